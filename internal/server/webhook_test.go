package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

type hookRequest struct {
	header http.Header
	body   []byte
}

// hookNames decodes a webhook body into its events' "name channel".
func hookNames(t *testing.T, r hookRequest) []string {
	t.Helper()
	var b struct {
		Events []struct{ Name, Channel string } `json:"events"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	var out []string
	for _, e := range b.Events {
		out = append(out, e.Name+" "+e.Channel)
	}
	return out
}

// A node with an app's webhook sends it signed, and on shutdown sends what
// it held back (the vacancy of the channel its last client left) before
// Serve returns.
func TestWebhooksSentAndFlushedOnShutdown(t *testing.T) {
	reqs := make(chan hookRequest, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs <- hookRequest{r.Header.Clone(), b}
	}))
	defer recv.Close()
	a := testApp("1")
	a.Webhooks = []apps.Webhook{{URL: recv.URL + "/hooks", EventTypes: []string{"channel_occupied", "channel_vacated"}}}
	ts := startServer(t, oneApp(a))
	c, _ := connect(t, ts, a.Key)
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	next := func() hookRequest {
		t.Helper()
		select {
		case r := <-reqs:
			if got, want := r.header.Get("X-Pusher-Signature"), auth.WebhookSignature(a.Secret, r.body); got != want {
				t.Fatalf("signature %q, want %q", got, want)
			}
			if r.header.Get("X-Pusher-Key") != a.Key || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.header)
			}
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no webhook")
			return hookRequest{}
		}
	}
	if got := hookNames(t, next()); len(got) != 1 || got[0] != "channel_occupied news" {
		t.Fatalf("events %q", got)
	}
	if err := ts.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	// Sent before Serve returned, without waiting for the delay.
	select {
	case r := <-reqs:
		if got := hookNames(t, r); len(got) != 1 || got[0] != "channel_vacated news" {
			t.Fatalf("events %q", got)
		}
	default:
		t.Fatal("the held-back channel_vacated was not sent on shutdown")
	}
}
