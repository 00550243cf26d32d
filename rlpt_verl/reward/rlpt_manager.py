"""Placeholder replaced by the RLPT judge reward manager."""

from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
from verl.experimental.reward_loop.reward_manager.registry import register


@register("rlpt")
class RLPTRewardManager(RewardManagerBase):
    async def run_single(self, data):
        raise NotImplementedError
