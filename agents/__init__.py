"""convosim.agents"""
