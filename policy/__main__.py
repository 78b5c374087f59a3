"""The SentinelIQ policy pack. Only builds the pack: constructing it starts the policy server, so the rules live
in `sentineliq_policy` (`pack.py` gathers them), where tests import them."""

from pulumi_policy import EnforcementLevel, PolicyPack
from sentineliq_policy.pack import policies

PolicyPack(name="sentineliq", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
