from convosim.cli import main

main()
