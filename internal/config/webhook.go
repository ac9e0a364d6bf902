package config

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/heraldhq/herald/internal/webhook"
)

// Defaults of the webhook settings (see docs/webhooks.md): the
// dispatcher's own.
const (
	DefaultWebhookBatchWindow    = webhook.DefaultBatchWindow
	DefaultWebhookDelay          = webhook.DefaultDelay
	DefaultWebhookRetryLimit     = webhook.DefaultRetryLimit
	DefaultWebhookRequestTimeout = webhook.DefaultRequestTimeout
	DefaultWebhookQueueSize      = webhook.DefaultQueueSize
	// maxWebhookDelay stays well under what the brokers keep a held-back
	// vacancy or removal for (broker.PendingHold).
	maxWebhookDelay = time.Minute
)

// Webhook holds the node's webhook settings; the targets are per app
// (apps.App.Webhooks).
type Webhook struct {
	// BatchWindow is how long the first event of a request waits for
	// others of its app (default 50ms).
	BatchWindow time.Duration `yaml:"batch_window"`
	// Delay holds back channel_vacated and member_removed; a re-occupation
	// or re-join within it cancels both (default 3s).
	Delay time.Duration `yaml:"delay"`
	// RetryLimit is how long a failing delivery is retried (default 5m).
	RetryLimit time.Duration `yaml:"retry_limit"`
	// RequestTimeout bounds one attempt (default 4s).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// QueueSize bounds the events waiting per target (default 10000).
	QueueSize int `yaml:"queue_size"`
}

func (w *Webhook) fromEnv(getenv func(string) string) error {
	for _, v := range []struct {
		env string
		dst *time.Duration
	}{
		{"HERALD_WEBHOOK_BATCH_WINDOW", &w.BatchWindow},
		{"HERALD_WEBHOOK_DELAY", &w.Delay},
		{"HERALD_WEBHOOK_RETRY_LIMIT", &w.RetryLimit},
		{"HERALD_WEBHOOK_REQUEST_TIMEOUT", &w.RequestTimeout},
	} {
		if s := getenv(v.env); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not a duration such as 3s", v.env, s)
			}
			*v.dst = d
		}
	}
	if s := getenv("HERALD_WEBHOOK_QUEUE_SIZE"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("HERALD_WEBHOOK_QUEUE_SIZE: %q is not a number", s)
		}
		w.QueueSize = n
	}
	return nil
}

func (w *Webhook) applyDefaults() {
	w.BatchWindow = orDefault(w.BatchWindow, DefaultWebhookBatchWindow)
	w.Delay = orDefault(w.Delay, DefaultWebhookDelay)
	w.RetryLimit = orDefault(w.RetryLimit, DefaultWebhookRetryLimit)
	w.RequestTimeout = orDefault(w.RequestTimeout, DefaultWebhookRequestTimeout)
	w.QueueSize = orDefault(w.QueueSize, DefaultWebhookQueueSize)
}

func (w Webhook) validate() error {
	if w.BatchWindow < 0 || w.Delay < 0 || w.RetryLimit < 0 || w.RequestTimeout < 0 || w.QueueSize < 0 {
		return errors.New("webhook: durations and queue_size must not be negative (0 means the default)")
	}
	if err := check(
		bound[time.Duration]{key: "webhook.delay", env: "HERALD_WEBHOOK_DELAY", v: w.Delay, max: maxWebhookDelay},
		bound[time.Duration]{key: "webhook.batch_window", env: "HERALD_WEBHOOK_BATCH_WINDOW", v: w.BatchWindow, max: maxWebhookBatchWindow},
		bound[time.Duration]{key: "webhook.retry_limit", env: "HERALD_WEBHOOK_RETRY_LIMIT", v: w.RetryLimit, max: maxWebhookRetryLimit},
		bound[time.Duration]{key: "webhook.request_timeout", env: "HERALD_WEBHOOK_REQUEST_TIMEOUT", v: w.RequestTimeout, max: maxWebhookRequestTimeout},
	); err != nil {
		return err
	}
	return check(bound[int]{key: "webhook.queue_size", env: "HERALD_WEBHOOK_QUEUE_SIZE", v: w.QueueSize, max: maxWebhookQueueSize})
}
