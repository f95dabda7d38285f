{{ config(materialized='view') }}

-- A view: its incremental consumers (int_user_daily_activity, mart_sessions) filter it on _loaded_at.
-- What a user did: events they caused, without those that are not their own doing (a failed login
-- may be somebody else trying their account; expiry and deliveries are the system's).
select
    event_id,
    event_seq,
    actor_user_id as user_id,
    event_type,
    shop_id,
    product_id,
    order_id,
    occurred_at,
    event_date,
    _loaded_at
from {{ ref('stg_events') }}
where actor_user_id is not null
  and event_type not in (
      'user.login_failed',
      'session.expired',
      'notification.delivered',
      'notification.delivery_failed',
      'notification.dead_lettered',
      -- Written with the action that caused them, which is already counted.
      'notification.created',
      'notification.queued'
  )
