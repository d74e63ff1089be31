"""convosim.environments"""
