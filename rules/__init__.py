"""convosim.rules"""
