"""convosim.runners"""
