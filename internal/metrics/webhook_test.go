package metrics_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/metrics"
	"github.com/heraldhq/herald/internal/webhook"
)

var _ webhook.Recorder = (*metrics.WebhookRecorder)(nil)

// TestWebhookSeries: the webhook series exist at zero for each app with
// webhooks, with every drop reason and request result the webhook package
// uses, and count what they are told.
func TestWebhookSeries(t *testing.T) {
	m := metrics.New(metrics.Options{})
	w := m.Webhooks([]string{"a1"})
	w.Dropped("a1", webhook.DropQueueFull, 3)
	w.Request("a1", webhook.ResultHTTPError)
	w.Request("a1", webhook.ResultSuccess)
	w.Retry("a1")
	w.Sent("a1", 5)
	rr := httptest.NewRecorder()
	m.Handler().ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	body := rr.Body.String()
	for _, want := range []string{
		`herald_webhooks_dropped_total{app_id="a1",reason="queue_full"} 3`,
		`herald_webhooks_dropped_total{app_id="a1",reason="` + webhook.DropRetryLimit + `"} 0`,
		`herald_webhooks_dropped_total{app_id="a1",reason="` + webhook.DropShutdown + `"} 0`,
		`herald_webhooks_dropped_total{app_id="a1",reason="` + webhook.DropSettleFailed + `"} 0`,
		`herald_webhook_requests_total{app_id="a1",result="http_error"} 1`,
		`herald_webhook_requests_total{app_id="a1",result="success"} 1`,
		`herald_webhook_requests_total{app_id="a1",result="` + webhook.ResultTimeout + `"} 0`,
		`herald_webhook_requests_total{app_id="a1",result="` + webhook.ResultError + `"} 0`,
		`herald_webhook_retries_total{app_id="a1"} 1`,
		`herald_webhooks_sent_total{app_id="a1"} 5`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("no %s in\n%s", want, grep(body, "webhook"))
		}
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
