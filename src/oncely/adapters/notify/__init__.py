"""Notification channels: oncely's signed webhook and everything Apprise reaches."""

from __future__ import annotations

from oncely.adapters.notify.appriseurl import AppriseSender, check_apprise_url
from oncely.adapters.notify.sender import ChannelSender, check_channel
from oncely.adapters.notify.webhook import WebhookSender

__all__ = ["AppriseSender", "ChannelSender", "WebhookSender", "check_apprise_url", "check_channel"]
