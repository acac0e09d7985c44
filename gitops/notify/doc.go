// Package notify posts notifications to webhooks (Slack-compatible: a JSON object whose "text" a chat
// shows, with the details beside it under "appfleet"). Each notification has a key; a key is sent at
// most once (the daemon keys by transition, commit and address), and a failed delivery is retried with
// backoff without holding up the caller.
//
// notify never blocks the caller on the network and never sends a secret: callers pass only addresses,
// commits and messages.
package notify
