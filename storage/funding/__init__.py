"""Funding: notices (F<n>), subscriptions, feed sources (S<n>), deliveries, reminders,
digests and past grants, one module each.

Features use them as one namespace (``from storage import funding``;
``funding.add_notice``, ``funding.FundingDelivery``), so this package re-exports
each module's names; new code may import the module it needs directly.
"""

from storage.funding.deliveries import (
    FundingDelivery,
    delivered_rooms,
    deliveries,
    fill_sent,
    queue_posts,
    record_deliveries,
    record_delivery,
)
from storage.funding.digests import (
    FundingDigestEntry,
    add_digest_entry,
    email_digest,
    pending_digest,
)
from storage.funding.grants import PastGrant, grants_in, upsert_grants
from storage.funding.notices import (
    EXPIRED,
    HELD,
    PUBLISHED,
    REJECTED,
    STATUSES,
    FundingNotice,
    add_notice,
    expire,
    item_known,
    notice,
    notices,
    posted_since,
)
from storage.funding.reminders import (
    FundingReminder,
    record_reminder,
    reminder_candidates,
    reminders_sent,
)
from storage.funding.sources import (
    FundingSource,
    add_source,
    due_sources,
    source,
    source_by_url,
    sources,
)
from storage.funding.subscriptions import (
    FundingSubscription,
    subscribe,
    subscription,
    subscriptions,
    unsubscribe,
)

__all__ = [
    "EXPIRED",
    "HELD",
    "PUBLISHED",
    "REJECTED",
    "STATUSES",
    "FundingDelivery",
    "FundingDigestEntry",
    "FundingNotice",
    "FundingReminder",
    "FundingSource",
    "FundingSubscription",
    "PastGrant",
    "add_digest_entry",
    "add_notice",
    "add_source",
    "delivered_rooms",
    "deliveries",
    "due_sources",
    "email_digest",
    "expire",
    "fill_sent",
    "grants_in",
    "item_known",
    "notice",
    "notices",
    "pending_digest",
    "posted_since",
    "queue_posts",
    "record_deliveries",
    "record_delivery",
    "record_reminder",
    "reminder_candidates",
    "reminders_sent",
    "source",
    "source_by_url",
    "sources",
    "subscribe",
    "subscription",
    "subscriptions",
    "unsubscribe",
    "upsert_grants",
]
