package apps

import (
	"fmt"
	"time"
)

// LimitError is an app setting outside the range Herald accepts, or at
// odds with another setting. Key is the setting's YAML key, so that the
// caller can say where its value came from.
type LimitError struct {
	App string // the app's id
	Key string // the setting refused, e.g. "max_event_bytes"
	Msg string // what is wrong, naming the value and the bound
}

func (e *LimitError) Error() string { return fmt.Sprintf("app %s: %s", e.App, e.Msg) }

// Upper bounds of the limits. Each is far above what any deployment needs,
// and each keeps what one connection, channel or request can make Herald
// hold bounded: a typo (an extra zero, bytes meant as KiB) is refused at
// start rather than found when memory runs out.
const (
	// maxConnections is more than a node can hold (every connection is a
	// file descriptor and some KiB of kernel memory).
	maxConnections = 10_000_000
	// maxClientEventRate and maxPresenceJoinRate are per connection per
	// second (presence joins and sign-ins per user per node too), and each
	// event or join is fanned out to the channel.
	maxClientEventRate  = 10_000
	maxPresenceJoinRate = 1_000
	// maxPresenceMembers and maxPresenceUserInfoBytes: every member's
	// user_info is held per channel and sent to each joiner in one frame
	// (checked against max_queue_bytes by the config).
	maxPresenceMembers       = 100_000
	maxPresenceUserInfoBytes = 64 << 10
	// maxEventBytes is 400 times Pusher's 10 KB; each event is held in the
	// queue of every subscriber it goes to.
	maxEventBytes  = 4 << 20
	maxBatchEvents = 1_000
	// maxBodyBytes holds a full batch of the largest events: a REST body
	// is read whole into memory.
	maxBodyBytes   = 64 << 20
	watchlistLimit = 10_000
	// maxChannelNameLength: a name is held for every subscription (up to
	// max_subscriptions_per_connection per connection) and in every
	// channel listing.
	maxChannelNameLength          = 1024
	maxSubscriptionsPerConnection = 10_000
	// maxActivityTimeout and maxSigninTimeout bound how long a dead or
	// unauthorized connection keeps its resources.
	maxActivityTimeout = time.Hour
	maxSigninTimeout   = time.Hour
)

// Framing allowances, in bytes, of the messages that carry an app's largest
// values: the JSON around the value with one-character names and ids, and
// no escaping. They give the least a message can take, so a setting whose
// largest value does not fit even then can never be reached, and only such
// settings are refused.
const (
	// eventEnvelope is the JSON around an event's data in a client event
	// ({"event":"a","channel":"b","data":}), a REST request or a
	// Centrifugo publish, each at least 34 bytes.
	eventEnvelope = 32
	// memberFraming is what one member adds to a presence member list
	// besides its user_info: its id twice, quoted and escaped inside the
	// event's data string, and the separators.
	memberFraming = 12
	// memberListEnvelope is the JSON around a member list (the event
	// pusher_internal:subscription_succeeded alone is 38 characters).
	memberListEnvelope = 64
	// userInfoEnvelope is the JSON of a presence subscribe or a sign-in
	// around its user_info, with the 64 hex digits of its signature.
	userInfoEnvelope = 128
)

// EventMessageBytes is the least a message takes that carries event data
// of MaxEventBytes: what a client message, a REST body and a client's send
// queue must at least allow.
func (a *App) EventMessageBytes() int { return a.MaxEventBytes + eventEnvelope }

// MemberListBytes is the least the frame takes that lists the members of
// a full presence channel whose user_info are all of the largest size:
// every joiner is sent it whole.
func (a *App) MemberListBytes() int {
	return a.MaxPresenceMembers*(a.MaxPresenceUserInfoBytes+memberFraming) + memberListEnvelope
}

// UserInfoMessageBytes is the least a client message takes that carries a
// user_info of MaxPresenceUserInfoBytes: a presence subscribe with its
// channel_data, or a sign-in with its user_data.
func (a *App) UserInfoMessageBytes() int { return a.MaxPresenceUserInfoBytes + userInfoEnvelope }

// validateBounds reports the first limit of a normalized app over its
// upper bound, or at odds with another.
func (a *App) validateBounds() error {
	for _, l := range []struct {
		key    string
		v, max int
	}{
		{"max_connections", a.MaxConnections, maxConnections},
		{"client_event_rate", a.ClientEventRate, maxClientEventRate},
		{"presence_join_rate", a.PresenceJoinRate, maxPresenceJoinRate},
		{"max_presence_members", a.MaxPresenceMembers, maxPresenceMembers},
		{"max_presence_user_info_bytes", a.MaxPresenceUserInfoBytes, maxPresenceUserInfoBytes},
		{"max_event_bytes", a.MaxEventBytes, maxEventBytes},
		{"max_batch_events", a.MaxBatchEvents, maxBatchEvents},
		{"max_body_bytes", a.MaxBodyBytes, maxBodyBytes},
		{"watchlist_limit", a.WatchlistLimit, watchlistLimit},
		{"max_channel_name_length", a.MaxChannelNameLength, maxChannelNameLength},
		{"max_subscriptions_per_connection", a.MaxSubscriptionsPerConnection, maxSubscriptionsPerConnection},
	} {
		if l.v > l.max {
			return a.limitError(l.key, "%s %d is over %d", l.key, l.v, l.max)
		}
	}
	for _, l := range []struct {
		key    string
		v, max time.Duration
	}{
		{"activity_timeout", a.ActivityTimeout, maxActivityTimeout},
		{"signin_timeout", a.SigninTimeout, maxSigninTimeout},
	} {
		if l.v > l.max {
			return a.limitError(l.key, "%s %v is over %v", l.key, l.v, l.max)
		}
	}
	if need := a.EventMessageBytes(); need > a.MaxBodyBytes {
		return a.limitError("max_event_bytes", "max_event_bytes %d%s does not fit in max_body_bytes %d%s: a REST request carrying such an event takes at least %d bytes; raise max_body_bytes or lower max_event_bytes",
			a.MaxEventBytes, IfDefault(a.MaxEventBytes, DefaultMaxEventBytes), a.MaxBodyBytes, IfDefault(a.MaxBodyBytes, DefaultMaxBodyBytes), need)
	}
	return nil
}

func (a *App) limitError(key, format string, args ...any) error {
	return &LimitError{App: a.ID, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// IfDefault is " (the default)" when v is def, else "": an error about two
// settings says which of them the operator did not choose.
func IfDefault[T comparable](v, def T) string {
	if v == def {
		return " (the default)"
	}
	return ""
}
