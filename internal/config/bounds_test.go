package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/apps"
)

// oneApp is a file of one app with extra settings (a YAML flow map's
// entries, each starting with ", ") and node settings before it.
func oneApp(node, app string) string {
	return node + "apps:\n  - {id: '1', key: k, secret: s" + app + "}\n"
}

// Each node setting accepts its bound and refuses just over it, naming the
// setting, the value, the bound and where the value came from.
func TestLoadBounds(t *testing.T) {
	redis := map[string]string{"HERALD_REDIS_URL": "redis://127.0.0.1:6379/0"}
	withRedis := func(k, v string) map[string]string {
		return map[string]string{"HERALD_REDIS_URL": redis["HERALD_REDIS_URL"], k: v}
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string // node settings, before one app
		want string // "" when accepted; else what the error must contain, besides the source
		from string // the source the error names: "file" for the config file
	}{
		{name: "pong_timeout at 10m", file: "pong_timeout: 10m\n"},
		{name: "pong_timeout over 10m", file: "pong_timeout: 10m1s\n", want: "config: pong_timeout 10m1s is over 10m0s", from: "file"},
		{name: "max_connections at 10 million", file: "max_connections: 10000000\n"},
		{name: "max_connections over 10 million", file: "max_connections: 10000001\n", want: "config: max_connections 10000001 is over 10000000", from: "file"},
		{name: "max_queue_bytes at 512 MiB", file: "max_queue_bytes: 536870912\n"},
		{name: "max_queue_bytes over 512 MiB", file: "max_queue_bytes: 536870913\n", want: "config: max_queue_bytes 536870913 is over 536870912", from: "file"},
		{name: "max_message_bytes at 16 MiB", file: "max_message_bytes: 16777216\n"},
		{name: "max_message_bytes over 16 MiB", file: "max_message_bytes: 16777217\n", want: "config: max_message_bytes 16777217 is over 16777216", from: "file"},
		{name: "max_pending_connections at 1Mi", file: "max_pending_connections: 1048576\n"},
		{name: "max_pending_connections over 1Mi", file: "max_pending_connections: 1048577\n", want: "config: max_pending_connections 1048577 is over 1048576", from: "file"},
		{name: "http_header_timeout at 10m", file: "http_header_timeout: 10m\n"},
		{name: "http_header_timeout over 10m", file: "http_header_timeout: 601s\n", want: "config: http_header_timeout 10m1s is over 10m0s", from: "file"},
		{name: "http_body_timeout at 1h", file: "http_body_timeout: 1h\n"},
		{name: "http_body_timeout over 1h", file: "http_body_timeout: 61m\n", want: "config: http_body_timeout 1h1m0s is over 1h0m0s", from: "file"},
		{name: "http_write_timeout at 1h", file: "http_write_timeout: 1h\n"},
		{name: "http_write_timeout over 1h", file: "http_write_timeout: 61m\n", want: "config: http_write_timeout 1h1m0s is over 1h0m0s", from: "file"},
		{name: "http_idle_timeout at 1h", file: "http_idle_timeout: 1h\n"},
		{name: "http_idle_timeout over 1h", file: "http_idle_timeout: 61m\n", want: "config: http_idle_timeout 1h1m0s is over 1h0m0s", from: "file"},
		{name: "shutdown_timeout at 1h", file: "shutdown_timeout: 1h\n"},
		{name: "shutdown_timeout over 1h", file: "shutdown_timeout: 61m\n", want: "config: shutdown_timeout 1h1m0s is over 1h0m0s", from: "file"},
		{name: "shutdown_delay at 1h", env: map[string]string{"HERALD_SHUTDOWN_DELAY": "1h"}},
		{name: "shutdown_delay over 1h from the variable", env: map[string]string{"HERALD_SHUTDOWN_DELAY": "61m"}, want: "config: shutdown_delay 1h1m0s is over 1h0m0s", from: "HERALD_SHUTDOWN_DELAY"},
		{name: "shutdown_delay over 1h from the flag", args: []string{"--shutdown-delay", "2h"}, env: map[string]string{"HERALD_SHUTDOWN_DELAY": "1s"}, want: "config: shutdown_delay 2h0m0s is over 1h0m0s", from: "--shutdown-delay"},
		{name: "shutdown_delay over 1h in the file", file: "shutdown_delay: 2h\n", want: "config: shutdown_delay 2h0m0s is over 1h0m0s", from: "file"},
		{name: "webhook.retry_limit at 24h", env: map[string]string{"HERALD_WEBHOOK_RETRY_LIMIT": "24h"}},
		{name: "webhook.retry_limit over 24h", env: map[string]string{"HERALD_WEBHOOK_RETRY_LIMIT": "25h"}, want: "config: webhook.retry_limit 25h0m0s is over 24h0m0s", from: "HERALD_WEBHOOK_RETRY_LIMIT"},
		{name: "webhook.request_timeout at 5m", file: "webhook: {request_timeout: 5m}\n"},
		{name: "webhook.request_timeout over 5m", file: "webhook: {request_timeout: 301s}\n", want: "config: webhook.request_timeout 5m1s is over 5m0s", from: "file"},
		{name: "webhook.queue_size at a million", env: map[string]string{"HERALD_WEBHOOK_QUEUE_SIZE": "1000000"}},
		{name: "webhook.queue_size over a million", env: map[string]string{"HERALD_WEBHOOK_QUEUE_SIZE": "1000001"}, want: "config: webhook.queue_size 1000001 is over 1000000", from: "HERALD_WEBHOOK_QUEUE_SIZE"},
		{name: "webhook.delay at 1m", env: map[string]string{"HERALD_WEBHOOK_DELAY": "1m"}},
		{name: "webhook.delay over 1m", env: map[string]string{"HERALD_WEBHOOK_DELAY": "61s"}, want: "config: webhook.delay 1m1s is over 1m0s", from: "HERALD_WEBHOOK_DELAY"},
		{name: "webhook.batch_window at 10s", file: "webhook: {batch_window: 10s}\n"},
		{name: "webhook.batch_window over 10s", file: "webhook: {batch_window: 11s}\n", want: "config: webhook.batch_window 11s is over 10s", from: "file"},
		{name: "redis.node_ttl at 1h", env: withRedis("HERALD_REDIS_NODE_TTL", "1h")},
		{name: "redis.node_ttl over 1h", env: withRedis("HERALD_REDIS_NODE_TTL", "61m"), want: "config: redis.node_ttl 1h1m0s is over 1h0m0s", from: "HERALD_REDIS_NODE_TTL"},
		{name: "redis.refresh_interval at 100ms", env: withRedis("HERALD_REDIS_REFRESH_INTERVAL", "100ms")},
		{name: "redis.refresh_interval under 100ms", env: withRedis("HERALD_REDIS_REFRESH_INTERVAL", "99ms"), want: "config: redis.refresh_interval 99ms is under 100ms", from: "HERALD_REDIS_REFRESH_INTERVAL"},
		{name: "centrifugo.ping_interval at 1h", env: map[string]string{"HERALD_CENTRIFUGO_PING_INTERVAL": "1h"}},
		{name: "centrifugo.ping_interval over 1h", env: map[string]string{"HERALD_CENTRIFUGO_PING_INTERVAL": "3601s"}, want: "config: centrifugo.ping_interval 1h0m1s is over 1h0m0s", from: "HERALD_CENTRIFUGO_PING_INTERVAL"},
		{name: "centrifugo.pong_timeout at 10m", file: "centrifugo: {pong_timeout: 10m}\n"},
		{name: "centrifugo.pong_timeout over 10m", file: "centrifugo: {pong_timeout: 601s}\n", want: "config: centrifugo.pong_timeout 10m1s is over 10m0s", from: "file"},
		{name: "centrifugo.expired_close_delay at 1h", env: map[string]string{"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY": "1h"}},
		{name: "centrifugo.expired_close_delay over 1h", env: map[string]string{"HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY": "61m"}, want: "config: centrifugo.expired_close_delay 1h1m0s is over 1h0m0s", from: "HERALD_CENTRIFUGO_EXPIRED_CLOSE_DELAY"},
		{name: "centrifugo.stale_close_delay at 10m", env: map[string]string{"HERALD_CENTRIFUGO_STALE_CLOSE_DELAY": "10m"}},
		{name: "centrifugo.stale_close_delay over 10m", env: map[string]string{"HERALD_CENTRIFUGO_STALE_CLOSE_DELAY": "11m"}, want: "config: centrifugo.stale_close_delay 11m0s is over 10m0s", from: "HERALD_CENTRIFUGO_STALE_CLOSE_DELAY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, oneApp(tt.file, ""))
			_, err := Load(append([]string{"--config", path}, tt.args...), env(tt.env))
			checkLoad(t, err, tt.want, tt.from, path)
		})
	}
}

// checkLoad checks Load's error against want ("" for none) and the source
// it must name: "file" for the config file at path, else a variable or
// flag.
func checkLoad(t *testing.T, err error, want, from, path string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return
	}
	if from == "file" {
		from = "config file " + path
	}
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), " ("+from+")") {
		t.Fatalf("Load error %v, want one containing %q and ending in (%s)", err, want, from)
	}
}

// An app's limits that Herald's node settings cannot carry are refused:
// an event or user_info no client message or send queue can hold.
func TestLoadCrossChecks(t *testing.T) {
	tests := []struct {
		name      string
		node, app string
		want      string
	}{
		{name: "defaults"},
		// Client events travel in client messages: their largest, with
		// the JSON around it, must fit in max_message_bytes.
		{name: "client event just fits", node: "max_message_bytes: 100032\n", app: ", client_events: true, max_event_bytes: 100000"},
		{name: "client event one byte over", node: "max_message_bytes: 100031\n", app: ", client_events: true, max_event_bytes: 100000",
			want: "config: app 1: max_event_bytes 100000 does not fit in max_message_bytes 100031: with client_events or client_publish on, a client message carrying such an event takes at least 100032 bytes"},
		{name: "Centrifugo publish one byte over", node: "max_message_bytes: 100031\n", app: ", client_publish: true, max_event_bytes: 100000",
			want: "max_event_bytes 100000 does not fit in max_message_bytes 100031"},
		{name: "raised event under the default message limit", app: ", client_events: true, max_event_bytes: 65536",
			want: "max_message_bytes 65536 (the default)"},
		{name: "large events without client events", node: "max_message_bytes: 4096\n", app: ", max_event_bytes: 100000"},
		// Every event reaches a subscriber through its send queue.
		{name: "event just fits the queue", node: "max_queue_bytes: 100032\n", app: ", max_event_bytes: 100000, max_presence_members: 10"},
		{name: "event one byte over the queue", node: "max_queue_bytes: 100031\n", app: ", max_event_bytes: 100000, max_presence_members: 10",
			want: "config: app 1: max_event_bytes 100000 does not fit in max_queue_bytes 100031: an event that large takes at least 100032 bytes in a subscriber's send queue"},
		{name: "raised event over the default queue", app: ", max_event_bytes: 2097152, max_body_bytes: 4194304", want: "max_queue_bytes 1048576 (the default)"},
		// The member list of a full presence channel is one frame.
		{name: "member list just fits the queue", node: "max_queue_bytes: 1036064\n", app: ", max_presence_members: 1000"},
		{name: "member list one byte over the queue", node: "max_queue_bytes: 1036063\n", app: ", max_presence_members: 1000",
			want: "config: app 1: max_presence_members 1000 with max_presence_user_info_bytes 1024 (the default) does not fit in max_queue_bytes 1036063: the member list of a full presence channel takes at least 1036064 bytes"},
		{name: "member list over the default queue", app: ", max_presence_members: 2000", want: "max_queue_bytes 1048576 (the default)"},
		{name: "large user_info in a small channel", node: "max_message_bytes: 131072\n", app: ", max_presence_members: 10, max_presence_user_info_bytes: 65536"},
		// A user_info arrives in a presence subscribe or a sign-in.
		{name: "user_info just fits a message", node: "max_message_bytes: 4224\n", app: ", max_presence_user_info_bytes: 4096"},
		{name: "user_info one byte over a message", node: "max_message_bytes: 4223\n", app: ", max_presence_user_info_bytes: 4096",
			want: "config: app 1: max_presence_user_info_bytes 4096 does not fit in max_message_bytes 4223: a presence subscribe or sign-in carrying such a user_info takes at least 4224 bytes"},
		{name: "user_info over the default message limit", app: ", max_presence_members: 10, max_presence_user_info_bytes: 65536", want: "max_message_bytes 65536 (the default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, oneApp(tt.node, tt.app))
			_, err := Load([]string{"--config", path}, env(nil))
			checkLoad(t, err, tt.want, "file", path)
			var le *apps.LimitError
			if tt.want != "" && !errors.As(err, &le) {
				t.Fatalf("Load error %#v is no *apps.LimitError", err)
			}
		})
	}
}

// An app's own limit over its bound names the file it came from; an app
// of the variables, which has only default limits, names none.
func TestLoadAppBoundsNameTheFile(t *testing.T) {
	path := writeFile(t, oneApp("", ", max_channel_name_length: 20000"))
	_, err := Load([]string{"--config", path}, env(nil))
	checkLoad(t, err, "config: app 1: max_channel_name_length 20000 is over 1024", "file", path)

	// A node setting from the file with the app from the variables: the
	// cross-check still names the file.
	path = writeFile(t, "max_message_bytes: 1024\n")
	_, err = Load([]string{"--config", path}, env(map[string]string{"HERALD_APP_ID": "9", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s"}))
	checkLoad(t, err, "config: app 9: max_presence_user_info_bytes 1024 (the default) does not fit in max_message_bytes 1024", "file", path)
}
