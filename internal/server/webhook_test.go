package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/pusherclient"
	"github.com/heraldhq/herald/internal/testkit/redistest"
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

// Two nodes on one Redis send each webhook once for the cluster: a
// channel and a user on both nodes are occupied and added once, and
// vacated and removed once, after the last connection anywhere left and
// the delay passed.
func TestWebhooksOncePerCluster(t *testing.T) {
	rs := redistest.Start(t)
	hooks := newHookRecorder(t)
	seen := hooks.seen
	a := testApp("1")
	a.Webhooks = []apps.Webhook{{URL: hooks.srv.URL, EventTypes: []string{"channel_occupied", "channel_vacated", "member_added", "member_removed"}}}
	const delay = 300 * time.Millisecond
	node := func(id string) *testServer {
		cfg := config.Config{Apps: []apps.App{a}}
		cfg.Webhook = config.Webhook{Delay: delay, BatchWindow: 10 * time.Millisecond}
		cfg.Redis = config.Redis{URL: rs.URL(), NodeID: id, NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
		ts := startServer(t, cfg)
		waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
		return ts
	}
	nodes := []*testServer{node("node-a"), node("node-b")}
	const ch, data = "presence-room", `{"user_id":"u1"}`
	var clients []*wsClient
	for _, ts := range nodes {
		c, sid := connect(t, ts, a.Key)
		c.Subscribe(ch, pusherclient.ChannelToken(a, sid, ch, data), data)
		c.Expect("pusher_internal:subscription_succeeded")
		clients = append(clients, c)
	}
	// The first subscriber's node reports the occupation before its member
	// (its join waits for its count to reach Redis).
	want := []string{"channel_occupied presence-room", "member_added presence-room u1"}
	waitForWithin(t, 5*time.Second, func() bool { return len(seen()) >= 2 })
	clients[0].Conn.Close()
	time.Sleep(2 * delay) // one node left: nothing is owed yet
	if got := seen(); !slices.Equal(got, want) {
		t.Fatalf("webhooks %q, want %q", got, want)
	}
	clients[1].Conn.Close()
	want = append(want, "channel_vacated presence-room", "member_removed presence-room u1")
	waitForWithin(t, 5*time.Second, func() bool { return len(seen()) >= 4 })
	time.Sleep(2 * delay) // room for a duplicate
	got := seen()
	if len(got) != 4 || !slices.Equal(got[:2], want[:2]) || !slices.Equal(sorted(got[2:]), want[2:]) {
		t.Fatalf("webhooks %q, want %q", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
