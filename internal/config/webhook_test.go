package config

import (
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/webhook"
)

func TestLoadWebhookDefaults(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Webhook{BatchWindow: 50 * time.Millisecond, Delay: 3 * time.Second, RetryLimit: 5 * time.Minute, RequestTimeout: 4 * time.Second, QueueSize: 10000}
	if c.Webhook != want {
		t.Errorf("webhook settings %+v, want %+v", c.Webhook, want)
	}
	if len(c.Apps[0].Webhooks) != 0 {
		t.Errorf("the development app has webhooks by default: %+v", c.Apps[0].Webhooks)
	}
}

func TestLoadWebhookEnv(t *testing.T) {
	c, err := Load(nil, env(map[string]string{
		"HERALD_APP_ID": "1", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s",
		"HERALD_APP_WEBHOOK_URL":         "http://127.0.0.1:9000/hooks",
		"HERALD_WEBHOOK_BATCH_WINDOW":    "10ms",
		"HERALD_WEBHOOK_DELAY":           "500ms",
		"HERALD_WEBHOOK_RETRY_LIMIT":     "30s",
		"HERALD_WEBHOOK_REQUEST_TIMEOUT": "1s",
		"HERALD_WEBHOOK_QUEUE_SIZE":      "50",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Webhook{BatchWindow: 10 * time.Millisecond, Delay: 500 * time.Millisecond, RetryLimit: 30 * time.Second, RequestTimeout: time.Second, QueueSize: 50}
	if c.Webhook != want {
		t.Errorf("webhook settings %+v, want %+v", c.Webhook, want)
	}
	hooks := c.Apps[0].Webhooks
	if len(hooks) != 1 || hooks[0].URL != "http://127.0.0.1:9000/hooks" || len(hooks[0].EventTypes) != 0 {
		t.Errorf("webhooks %+v, want the URL with every event type", hooks)
	}
}

func TestLoadWebhookFile(t *testing.T) {
	p := writeFile(t, `
webhook:
  delay: 1s
apps:
  - id: "1"
    key: k
    secret: s
    webhooks:
      - url: https://backend.example/pusher
        headers: {Authorization: "Bearer t"}
        event_types: [member_added, member_removed]
        channel_prefix: presence-
        channel_suffix: -room
`)
	c, err := Load([]string{"--config", p}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Apps[0].Webhooks[0]
	if w.URL != "https://backend.example/pusher" || w.Headers["Authorization"] != "Bearer t" ||
		strings.Join(w.EventTypes, ",") != "member_added,member_removed" || w.ChannelPrefix != "presence-" || w.ChannelSuffix != "-room" {
		t.Errorf("webhook %+v", w)
	}
	if c.Webhook.Delay != time.Second || c.Webhook.RetryLimit != DefaultWebhookRetryLimit {
		t.Errorf("settings %+v", c.Webhook)
	}
}

// TestLoadWebhookErrors: what cannot work is refused at start, saying
// what is wrong.
func TestLoadWebhookErrors(t *testing.T) {
	single := map[string]string{"HERALD_APP_ID": "1", "HERALD_APP_KEY": "k", "HERALD_APP_SECRET": "s"}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range single {
			m[a] = b
		}
		return m
	}
	for _, tt := range []struct {
		env  map[string]string
		file string
		want string
	}{
		{env: with("HERALD_APP_WEBHOOK_URL", "not a url"), want: "webhooks[0]: url must start with http:// or https://"},
		{env: with("HERALD_APP_WEBHOOK_URL", "http://[::1"), want: "webhooks[0]: url does not parse"},
		{env: with("HERALD_WEBHOOK_DELAY", "3"), want: "HERALD_WEBHOOK_DELAY"},
		{env: with("HERALD_WEBHOOK_DELAY", "2m"), want: "webhook.delay"},
		{env: with("HERALD_WEBHOOK_QUEUE_SIZE", "many"), want: "HERALD_WEBHOOK_QUEUE_SIZE"},
		{env: with("HERALD_WEBHOOK_RETRY_LIMIT", "-1s"), want: "must not be negative"},
		{file: "apps:\n  - {id: '1', key: k, secret: s, webhooks: [{url: 'http://x.example/', event_types: [channel_created]}]}\n", want: `unknown event type "channel_created"`},
		{file: "apps:\n  - {id: '1', key: k, secret: s, webhooks: [{url: 'http://x.example/', filter: {}}]}\n", want: "field filter not found"},
		{file: "apps:\n  - {id: '1', key: k, secret: s}\n", env: map[string]string{"HERALD_APP_WEBHOOK_URL": "http://x.example/"}, want: "set webhooks on the file's apps"},
	} {
		var args []string
		if tt.file != "" {
			args = []string{"--config", writeFile(t, tt.file)}
		}
		_, err := Load(args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("env %v file %q: error %v, want %q", tt.env, tt.file, err, tt.want)
		}
	}
}

// TestWebhookDefaultsMatchTheDispatcher: the defaults documented here are
// those the dispatcher applies to a zero setting.
func TestWebhookDefaultsMatchTheDispatcher(t *testing.T) {
	if DefaultWebhookBatchWindow != webhook.DefaultBatchWindow || DefaultWebhookDelay != webhook.DefaultDelay ||
		DefaultWebhookRetryLimit != webhook.DefaultRetryLimit || DefaultWebhookRequestTimeout != webhook.DefaultRequestTimeout ||
		DefaultWebhookQueueSize != webhook.DefaultQueueSize {
		t.Error("config and webhook disagree on a default")
	}
	if maxWebhookDelay > broker.MaxSettleDelay || broker.MaxSettleDelay >= broker.PendingHold {
		t.Error("a delay the config allows outlasts what the brokers hold")
	}
}
