"""Proposers: the LLM one (openai SDK) and the offline default, behind garden.proposal.Proposer."""
