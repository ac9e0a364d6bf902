package server

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/config"
)

func probe(t *testing.T, ts *testServer, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + ts.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// /readyz says when a node should get no new clients: at its connection
// limit (and again ready once below it); /livez and /healthz answer all
// along.
func TestReadyzAtCapacity(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}, MaxConnections: 1})
	if code, body := probe(t, ts, "/readyz"); code != 200 || body != "ok" {
		t.Fatalf("/readyz idle: %d %q", code, body)
	}
	c, _ := connect(t, ts, a.Key)
	if code, body := probe(t, ts, "/readyz"); code != 503 || body != "at connection limit" {
		t.Fatalf("/readyz at the limit: %d %q", code, body)
	}
	for _, p := range []string{"/livez", "/healthz"} {
		if code, _ := probe(t, ts, p); code != 200 {
			t.Fatalf("%s at the limit: %d", p, code)
		}
	}
	c.Conn.Close()
	waitFor(t, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
}

// pingBroker is a broker with a health check that can fail.
type pingBroker struct {
	broker.Broker
	err error
}

func (p *pingBroker) Ping(context.Context) error { return p.err }

func TestReadyzBrokerHealth(t *testing.T) {
	b := &pingBroker{Broker: broker.NewMemory(0), err: errors.New("connection refused")}
	ts := startServerOpts(t, config.Config{Apps: []apps.App{testApp("1")}}, options{broker: b}, nil)
	if code, body := probe(t, ts, "/readyz"); code != 503 || body != "broker unavailable" {
		t.Fatalf("/readyz with a failing broker: %d %q", code, body)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
