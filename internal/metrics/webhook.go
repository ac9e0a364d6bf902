package metrics

import "github.com/prometheus/client_golang/prometheus"

// Webhook metric names: a public interface, do not rename.
const (
	nameWebhooksDropped = "herald_webhooks_dropped_total"
	nameWebhooksSent    = "herald_webhooks_sent_total"
	nameWebhookRequests = "herald_webhook_requests_total"
	nameWebhookRetries  = "herald_webhook_retries_total"
)

// Webhook drop reasons and request results, created at zero for each app
// with webhooks (the webhook package's closed sets).
var (
	webhookDropReasons = []string{"queue_full", "retry_limit", "shutdown", "settle_failed"}
	webhookResults     = []string{"success", "http_error", "timeout", "error"}
)

// WebhookRecorder counts a node's webhooks; it implements
// webhook.Recorder.
type WebhookRecorder struct {
	dropped  *prometheus.CounterVec
	sent     *prometheus.CounterVec
	requests *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// Webhooks registers the webhook series, with every label value of appIDs
// (the apps with webhooks) at zero, and returns their recorder.
func (m *Metrics) Webhooks(appIDs []string) *WebhookRecorder {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		m.reg.MustRegister(v)
		return v
	}
	w := &WebhookRecorder{
		dropped:  counter(nameWebhooksDropped, "Webhook events dropped, by reason (queue_full, retry_limit, shutdown, settle_failed).", "app_id", "reason"),
		sent:     counter(nameWebhooksSent, "Webhook events delivered (answered 2xx).", "app_id"),
		requests: counter(nameWebhookRequests, "Webhook requests made, retries included, by result (success, http_error, timeout, error).", "app_id", "result"),
		retries:  counter(nameWebhookRetries, "Webhook requests that repeated a failed one.", "app_id"),
	}
	for _, app := range appIDs {
		for _, r := range webhookDropReasons {
			w.dropped.WithLabelValues(app, r)
		}
		for _, r := range webhookResults {
			w.requests.WithLabelValues(app, r)
		}
		w.sent.WithLabelValues(app)
		w.retries.WithLabelValues(app)
	}
	return w
}

// Dropped implements webhook.Recorder.
func (w *WebhookRecorder) Dropped(appID, reason string, n int) {
	w.dropped.WithLabelValues(appID, reason).Add(float64(n))
}

// Request implements webhook.Recorder.
func (w *WebhookRecorder) Request(appID, result string) {
	w.requests.WithLabelValues(appID, result).Inc()
}

// Retry implements webhook.Recorder.
func (w *WebhookRecorder) Retry(appID string) { w.retries.WithLabelValues(appID).Inc() }

// Sent implements webhook.Recorder.
func (w *WebhookRecorder) Sent(appID string, n int) { w.sent.WithLabelValues(appID).Add(float64(n)) }
