package config

import (
	"errors"
	"fmt"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/wsconn"
)

// Upper bounds of the node's settings. Each is far above what a deployment
// needs and keeps what one client, one stalled connection or one webhook
// target can make Herald hold bounded: a typo (an extra zero, a size in
// bytes meant as KiB) is refused at start.
const (
	// maxNodeConnections is more than a node can hold: every connection
	// is a file descriptor and some KiB of kernel memory.
	maxNodeConnections = 10_000_000
	// maxQueueBytes is the transport's own limit: a client half a
	// gigabyte behind will not catch up.
	maxQueueBytes = wsconn.MaxQueueBytesLimit
	// maxMessageBytes: a message still arriving is held whole, so this
	// much per connection.
	maxMessageBytes = 16 << 20
	// maxPendingConnections is the descriptor limit Herald's systemd unit
	// and Docker example set (LimitNOFILE, --ulimit nofile): a higher
	// bound could never be reached.
	maxPendingConnections = 1 << 20
	maxPongTimeout        = 10 * time.Minute
	// maxHTTPHeaderTimeout is shorter than the other HTTP timeouts: a
	// connection sending its head is anonymous and pending.
	maxHTTPHeaderTimeout = 10 * time.Minute
	maxHTTPTimeout       = time.Hour
	maxShutdown          = time.Hour

	maxWebhookRetryLimit     = 24 * time.Hour
	maxWebhookRequestTimeout = 5 * time.Minute
	maxWebhookBatchWindow    = 10 * time.Second
	// maxWebhookQueueSize counts events, each up to an app's
	// max_event_bytes, per target.
	maxWebhookQueueSize = 1_000_000

	maxNodeTTL = time.Hour
	// minRefreshInterval: each refresh is a round trip to Redis per node.
	minRefreshInterval = 100 * time.Millisecond

	maxCentrifugoPingInterval = time.Hour
	maxCentrifugoPongTimeout  = 10 * time.Minute
	maxCentrifugoExpiredDelay = time.Hour
	// maxCentrifugoStaleDelay is short, as for a request head: a
	// connection that has not sent connect is anonymous.
	maxCentrifugoStaleDelay = 10 * time.Minute
)

// settingError is a node setting outside its range, or at odds with
// another. Load adds where its value came from: the variable or flag that
// set it, if any, else the file.
type settingError struct {
	env  string // the variable that sets it, if any
	flag string // the flag that sets it, if any, without its dashes
	msg  string
}

func (e *settingError) Error() string { return e.msg }

// bound is one setting and its range; a zero min or max is no bound.
type bound[T int | time.Duration] struct {
	key, env string
	v        T
	min, max T
}

// check reports the first setting of bs out of its range.
func check[T int | time.Duration](bs ...bound[T]) error {
	for _, b := range bs {
		switch {
		case b.max != 0 && b.v > b.max:
			return &settingError{env: b.env, msg: fmt.Sprintf("%s %v is over %v", b.key, b.v, b.max)}
		case b.min != 0 && b.v != 0 && b.v < b.min:
			return &settingError{env: b.env, msg: fmt.Sprintf("%s %v is under %v", b.key, b.v, b.min)}
		}
	}
	return nil
}

// validateBounds checks the node's own limits and timeouts against their
// upper bounds.
func (c *Config) validateBounds() error {
	if err := check(
		bound[int]{key: "max_connections", v: c.MaxConnections, max: maxNodeConnections},
		bound[int]{key: "max_queue_bytes", v: c.MaxQueueBytes, max: maxQueueBytes},
		bound[int]{key: "max_message_bytes", v: c.MaxMessageBytes, max: maxMessageBytes},
		bound[int]{key: "max_pending_connections", v: c.MaxPendingConnections, max: maxPendingConnections},
	); err != nil {
		return err
	}
	err := check(
		bound[time.Duration]{key: "pong_timeout", v: c.PongTimeout, max: maxPongTimeout},
		bound[time.Duration]{key: "http_header_timeout", v: c.HTTPHeaderTimeout, max: maxHTTPHeaderTimeout},
		bound[time.Duration]{key: "http_body_timeout", v: c.HTTPBodyTimeout, max: maxHTTPTimeout},
		bound[time.Duration]{key: "http_write_timeout", v: c.HTTPWriteTimeout, max: maxHTTPTimeout},
		bound[time.Duration]{key: "http_idle_timeout", v: c.HTTPIdleTimeout, max: maxHTTPTimeout},
		bound[time.Duration]{key: "shutdown_timeout", v: c.ShutdownTimeout, max: maxShutdown},
		bound[time.Duration]{key: "shutdown_delay", env: "HERALD_SHUTDOWN_DELAY", v: c.ShutdownDelay, max: maxShutdown},
	)
	var se *settingError
	if errors.As(err, &se) && se.env == "HERALD_SHUTDOWN_DELAY" {
		se.flag = "shutdown-delay"
	}
	return err
}

// validateAppsFit checks each app's limits against the node settings that
// carry them: a largest value that no client message or send queue can
// hold would close every connection that reaches it instead of refusing
// what is over the limit.
func (c *Config) validateAppsFit() error {
	msg, queue := c.MaxMessageBytes, c.MaxQueueBytes
	msgDefault, queueDefault := apps.IfDefault(msg, 0), apps.IfDefault(queue, 0)
	if msg == 0 {
		msg = wsconn.DefaultMaxMessageBytes
	}
	if queue == 0 {
		queue = wsconn.DefaultMaxQueueBytes
	}
	for _, a := range c.Apps {
		a.Normalize()
		limitErr := func(key, format string, args ...any) error {
			return &apps.LimitError{App: a.ID, Key: key, Msg: fmt.Sprintf(format, args...)}
		}
		event := fmt.Sprintf("max_event_bytes %d%s", a.MaxEventBytes, apps.IfDefault(a.MaxEventBytes, apps.DefaultMaxEventBytes))
		info := fmt.Sprintf("max_presence_user_info_bytes %d%s", a.MaxPresenceUserInfoBytes, apps.IfDefault(a.MaxPresenceUserInfoBytes, apps.DefaultMaxPresenceUserInfoBytes))
		switch {
		case (a.ClientEvents || a.ClientPublish) && a.EventMessageBytes() > msg:
			// The transport closes a longer message (1009) before the
			// front end can refuse the event (4301, 106).
			return limitErr("max_event_bytes", "%s does not fit in max_message_bytes %d%s: with client_events or client_publish on, a client message carrying such an event takes at least %d bytes, and a longer message closes the connection (1009); raise max_message_bytes or lower max_event_bytes",
				event, msg, msgDefault, a.EventMessageBytes())
		case a.EventMessageBytes() > queue:
			return limitErr("max_event_bytes", "%s does not fit in max_queue_bytes %d%s: an event that large takes at least %d bytes in a subscriber's send queue, and every subscriber sent one would be disconnected (4100); raise max_queue_bytes or lower max_event_bytes",
				event, queue, queueDefault, a.EventMessageBytes())
		case a.MemberListBytes() > queue:
			return limitErr("max_presence_members", "max_presence_members %d%s with %s does not fit in max_queue_bytes %d%s: the member list of a full presence channel takes at least %d bytes, and a client joining it would be disconnected (4100); lower either limit or raise max_queue_bytes",
				a.MaxPresenceMembers, apps.IfDefault(a.MaxPresenceMembers, apps.DefaultMaxPresenceMembers), info, queue, queueDefault, a.MemberListBytes())
		case a.UserInfoMessageBytes() > msg:
			return limitErr("max_presence_user_info_bytes", "%s does not fit in max_message_bytes %d%s: a presence subscribe or sign-in carrying such a user_info takes at least %d bytes, and a longer message closes the connection (1009); raise max_message_bytes or lower max_presence_user_info_bytes",
				info, msg, msgDefault, a.UserInfoMessageBytes())
		}
	}
	return nil
}

// withSource adds to an error about a setting's value where that value
// came from: the flag or variable that set it, else the config file, if
// one was read. flags are the values of the flags that can set a bounded
// setting, by name.
func withSource(err error, path string, flags map[string]string, getenv func(string) string) error {
	var se *settingError
	var le *apps.LimitError
	setting := errors.As(err, &se)
	switch {
	case setting && se.flag != "" && flags[se.flag] != "":
		return fmt.Errorf("%w (--%s)", err, se.flag)
	case setting && se.env != "" && getenv(se.env) != "":
		return fmt.Errorf("%w (%s)", err, se.env)
	case (setting || errors.As(err, &le)) && path != "":
		// An app's numeric limits are only ever set in the file: the
		// app of the variables has the defaults.
		return fmt.Errorf("%w (config file %s)", err, path)
	}
	return err
}
