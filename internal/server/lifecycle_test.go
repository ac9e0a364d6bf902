package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/config"
)

func TestPongTimeoutCloses4201(t *testing.T) {
	a := testApp("1")
	a.ActivityTimeout = time.Second
	cfg := oneApp(a)
	cfg.PongTimeout = 500 * time.Millisecond
	ts := startServer(t, cfg)

	silent, _ := connect(t, ts, a.Key)
	polite, _ := connect(t, ts, a.Key)
	if m := silent.Expect("pusher:ping"); string(m.Data) != `"{}"` {
		t.Fatalf("ping data %s", m.Data)
	}
	// The polite client answers its ping and survives.
	polite.Expect("pusher:ping")
	polite.Send(map[string]any{"event": "pusher:pong", "data": map[string]any{}})

	m := silent.Expect("pusher:error")
	if code, _ := errorData(t, m); code == nil || *code != 4201 {
		t.Fatalf("code %v", code)
	}
	if code := silent.ExpectClose(); code != 4201 {
		t.Fatalf("close %d", code)
	}
	polite.Alive()
}

func TestRequireSignin(t *testing.T) {
	a := testApp("1")
	a.RequireSignin = true
	a.SigninTimeout = 300 * time.Millisecond
	ts := startServer(t, oneApp(a))
	lazy, _ := connect(t, ts, a.Key)
	authed, sid := connect(t, ts, a.Key)
	authed.Subscribe("private-ok", channelToken(a, sid, "private-ok", ""), "")
	authed.Expect("pusher_internal:subscription_succeeded")
	if code, msg := errorData(t, lazy.Expect("pusher:error")); code == nil || *code != 4009 || msg == "" {
		t.Fatalf("code %v msg %q", code, msg)
	}
	if code := lazy.ExpectClose(); code != 4009 {
		t.Fatalf("close %d", code)
	}
	time.Sleep(200 * time.Millisecond)
	authed.Alive()
}

func TestShutdownAsksClientsToReconnect(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	var clients []*wsClient
	for i := 0; i < 5; i++ {
		c, _ := connect(t, ts, a.Key)
		clients = append(clients, c)
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() { errc <- ts.stop(t) }()
	for _, c := range clients {
		if code, _ := errorData(t, c.Expect("pusher:error")); code == nil || *code != 4200 {
			t.Fatalf("code %v", code)
		}
		if code := c.ExpectClose(); code != 4200 {
			t.Fatalf("close %d", code)
		}
		c.Conn.Close()
	}
	if err := <-errc; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
}

// A client that stops reading is cut off with 4100 once its queue is full,
// while a reading client on the same channel receives every event in order.
func TestSlowClientIsolated(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.MaxQueueBytes = 64 * 1024
	ts := startServer(t, cfg)
	slow, _ := connect(t, ts, a.Key)
	fast, _ := connect(t, ts, a.Key)
	for _, c := range []*wsClient{slow, fast} {
		c.Subscribe("firehose", "", "")
		c.Expect("pusher_internal:subscription_succeeded")
	}
	const n = 20000
	// About 1 KB a frame; the sequence number makes order checkable.
	payload := func(i int) string { return fmt.Sprintf("%05d", i) + strings.Repeat("x", 995) }
	// The publisher stays at most window events ahead of the fast client,
	// so fewer than 40 KB are ever owed to it, well under its 64 KB limit,
	// however the reader is scheduled: only the slow client can overflow.
	const window = 32
	var received atomic.Int64
	readErr := make(chan error, 1) // the reader's verdict; nil when all arrived
	go func() {
		for i := 0; i < n; {
			m, err := fast.Next(10 * time.Second)
			switch {
			case err != nil:
				readErr <- fmt.Errorf("after %d events: %w", i, err)
				return
			case m.Close != 0:
				readErr <- fmt.Errorf("after %d events: closed with %d %s", i, m.Close, m.Data)
				return
			case m.Event != "tick":
				continue
			}
			var d string
			json.Unmarshal(m.Data, &d)
			if want := payload(i); d != want {
				readErr <- fmt.Errorf("event %d: got data %.20q..., want %.20q...", i, d, want)
				return
			}
			i++
			received.Store(int64(i))
		}
		readErr <- nil
	}()
	var err error
	done := false
publishing:
	for i := 0; i < n; i++ {
		publish(t, ts, a.ID, "firehose", "tick", payload(i))
		for int64(i+1)-received.Load() > window {
			select {
			case err = <-readErr:
				done = true
				break publishing
			case <-time.After(100 * time.Microsecond):
			}
		}
	}
	if !done {
		err = <-readErr
	}
	if err != nil {
		t.Fatalf("fast client: %v", err)
	}
	if code := slow.ExpectClose(); code != 4100 {
		t.Fatalf("slow client closed with %d, want 4100", code)
	}
	if ts.hub.SlowConsumers() != 1 {
		t.Fatalf("slow clients counted: %d", ts.hub.SlowConsumers())
	}
}

func TestConfigFromFileServesApps(t *testing.T) {
	// Keeps the YAML keys documented in the README honest.
	dir := t.TempDir()
	path := dir + "/herald.yaml"
	yaml := "pong_timeout: 5s\napps:\n  - id: \"77\"\n    key: k77\n    secret: s77\n    client_events: true\n    activity_timeout: 30s\n"
	if err := writeFile(path, yaml); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{"--config", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	c := dial(t, ts, "/app/k77?protocol=7")
	m := c.Read()
	var s string
	json.Unmarshal(m.Data, &s)
	if m.Event != "pusher:connection_established" || !strings.Contains(s, `"activity_timeout":30`) {
		t.Fatalf("%+v %s", m, s)
	}
}
