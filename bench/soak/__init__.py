"""The fault-injection soak (``make soak``): submissions through the real service while
workers and Redis are SIGKILLed; accepted, graded, lost, duplicated, wrong and stuck."""
