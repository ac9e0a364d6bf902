package server

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/broker"
	"github.com/heraldhq/herald/internal/channel"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/hub"
)

func oneApp(a apps.App) config.Config { return config.Config{Apps: []apps.App{a}} }

// publish sends an event the way the REST API does.
func publish(t *testing.T, ts *testServer, appID, name, event, data string) {
	t.Helper()
	ch, err := channel.Parse(name, 200)
	if err != nil {
		t.Fatal(err)
	}
	err = ts.hub.Publish(context.Background(), broker.Message{AppID: appID, Channel: name, Event: event, Data: data, Cache: ch.Cache}, hub.SourceREST)
	if err != nil {
		t.Fatal(err)
	}
}

func TestConnectionEstablished(t *testing.T) {
	a := testApp("1")
	a.ActivityTimeout = 42 * time.Second
	ts := startServer(t, oneApp(a))
	c := dial(t, ts, "/app/"+a.Key+"?protocol=7&client=js&version=8.6.0&flash=false")
	m := c.Read()
	if m.Event != "pusher:connection_established" {
		t.Fatalf("event %q", m.Event)
	}
	var s string
	if err := json.Unmarshal(m.Data, &s); err != nil {
		t.Fatalf("data must be a JSON string, got %s", m.Data)
	}
	var est struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	json.Unmarshal([]byte(s), &est)
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(est.SocketID) {
		t.Errorf("socket_id %q is not digits.digits", est.SocketID)
	}
	if est.ActivityTimeout != 42 {
		t.Errorf("activity_timeout = %d, want 42", est.ActivityTimeout)
	}
	_, other := connect(t, ts, a.Key)
	if other == est.SocketID {
		t.Error("two connections got the same socket_id")
	}
}

func TestConnectionRefusals(t *testing.T) {
	disabled := testApp("2")
	off := false
	disabled.Enabled = &off
	quota := testApp("3")
	quota.MaxConnections = 1
	ts := startServer(t, config.Config{Apps: []apps.App{testApp("1"), disabled, quota}})

	cases := []struct {
		name, path string
		code       int
	}{
		{"unknown key", "/app/nope?protocol=7", 4001},
		{"disabled app", "/app/key-2?protocol=7", 4003},
		{"protocol 3", "/app/key-1?protocol=3", 4007},
		{"protocol 8", "/app/key-1?protocol=8", 4007},
		{"protocol junk", "/app/key-1?protocol=seven", 4007},
		{"no protocol", "/app/key-1", 4008},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, ts, tc.path)
			m := c.Read()
			if m.Event != "pusher:error" {
				t.Fatalf("first frame %+v, want pusher:error", m)
			}
			if code, _ := errorData(t, m); code == nil || *code != tc.code {
				t.Fatalf("error code %v, want %d", code, tc.code)
			}
			if got := c.ExpectClose(); got != tc.code {
				t.Fatalf("close code %d, want %d", got, tc.code)
			}
		})
	}
	t.Run("protocol 5 accepted", func(t *testing.T) {
		c := dial(t, ts, "/app/key-1?protocol=5&client=java-client")
		if m := c.Read(); m.Event != "pusher:connection_established" {
			t.Fatalf("got %+v", m)
		}
	})
	t.Run("quota", func(t *testing.T) {
		first, _ := connect(t, ts, quota.Key)
		c := dial(t, ts, "/app/"+quota.Key+"?protocol=7")
		if code, _ := errorData(t, c.Expect("pusher:error")); code == nil || *code != 4004 {
			t.Fatalf("code %v, want 4004", code)
		}
		if got := c.ExpectClose(); got != 4004 {
			t.Fatalf("close %d, want 4004", got)
		}
		first.Alive()
		// Once the first connection leaves, the quota admits another.
		first.Conn.Close()
		deadline := time.Now().Add(3 * time.Second)
		for ts.hub.AppConnections(quota.ID) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		connect(t, ts, quota.Key)
	})
}

func TestPingPongAndBadFrames(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	c, _ := connect(t, ts, a.Key)
	c.Alive()

	// The Java client sends pusher:ping without data.
	c.SendRaw([]byte(`{"event":"pusher:ping"}`))
	if m := c.Expect("pusher:pong"); string(m.Data) != `"{}"` {
		t.Errorf("pong data %s, want \"{}\"", m.Data)
	}

	bad := []string{
		`not json`,
		`{"event":`,
		`[]`,
		`{"data":{}}`,
		`{"event":"pusher:subscribe"}`,
		`{"event":"pusher:subscribe","data":{}}`,
		`{"event":"pusher:subscribe","data":"not an object"}`,
		`{"event":"pusher:unsubscribe","data":null}`,
		`{"event":"pusher:nonsense","data":{}}`,
		`{"event":"whatever","data":{}}`,
		`{"event":"pusher:signin","data":7}`,
	}
	for _, b := range bad {
		c.SendRaw([]byte(b))
		m := c.Read()
		if m.Event != "pusher:error" {
			t.Fatalf("after %s got %+v, want pusher:error", b, m)
		}
		c.Alive()
	}
	// A subscribe still works afterwards.
	c.Subscribe("public-after-errors", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
}

// A message over max_message_bytes fails the connection with 1009 (message
// too big) as soon as its frame header arrives; nothing is buffered for it.
func TestOversizedMessage(t *testing.T) {
	a := testApp("1")
	cfg := oneApp(a)
	cfg.MaxMessageBytes = 1024
	ts := startServer(t, cfg)
	c, _ := connect(t, ts, a.Key)
	c.SendRaw([]byte(`{"event":"client-x","data":"` + strings.Repeat("x", 5000) + `"}`))
	if code := c.ExpectClose(); code != 1009 {
		t.Fatalf("close code %d, want 1009", code)
	}
	// A message of exactly the limit is served.
	c2, _ := connect(t, ts, a.Key)
	ping := []byte(`{"event":"pusher:ping","data":{}}`)
	c2.SendRaw(append(ping[:len(ping)-1:len(ping)-1], []byte(strings.Repeat(" ", 1024-len(ping))+"}")...))
	c2.Expect("pusher:pong")
}

func TestInvalidChannelNames(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	c, _ := connect(t, ts, a.Key)
	for _, name := range []string{"bad$name", strings.Repeat("x", 201), "has space", "#secret", "#server-to-user-someoneelse"} {
		c.Subscribe(name, "", "")
		m := c.Expect("pusher:subscription_error")
		if m.Channel != name {
			t.Errorf("subscription_error channel %q, want %q", m.Channel, name)
		}
		if m := c.Expect("pusher:error"); m.Channel != name {
			t.Errorf("pusher:error channel %q", m.Channel)
		}
	}
	c.Subscribe(strings.Repeat("y", 200), "", "")
	c.Expect("pusher_internal:subscription_succeeded")
}

func TestPublicChannelDelivery(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	c1, _ := connect(t, ts, a.Key)
	c2, _ := connect(t, ts, a.Key)
	for _, c := range []*wsClient{c1, c2} {
		c.Subscribe("news", "", "")
		if m := c.Expect("pusher_internal:subscription_succeeded"); string(m.Data) != `"{}"` || m.Channel != "news" {
			t.Fatalf("succeeded %+v", m)
		}
	}
	publish(t, ts, a.ID, "news", "headline", `{"text":"hi \"there\""}`)
	for _, c := range []*wsClient{c1, c2} {
		m := c.Expect("headline")
		var data string
		if err := json.Unmarshal(m.Data, &data); err != nil || data != `{"text":"hi \"there\""}` {
			t.Fatalf("data %s (%v)", m.Data, err)
		}
	}
	// Unsubscribed connections get nothing more.
	c2.Send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	c2.Alive()
	publish(t, ts, a.ID, "news", "second", "2")
	c1.Expect("second")
	c2.ExpectSilence(200 * time.Millisecond)
}

func TestAppsAreIsolated(t *testing.T) {
	a, b := testApp("1"), testApp("2")
	ts := startServer(t, config.Config{Apps: []apps.App{a, b}})
	ca, _ := connect(t, ts, a.Key)
	cb, _ := connect(t, ts, b.Key)
	ca.Subscribe("shared-name", "", "")
	cb.Subscribe("shared-name", "", "")
	ca.Expect("pusher_internal:subscription_succeeded")
	cb.Expect("pusher_internal:subscription_succeeded")
	publish(t, ts, a.ID, "shared-name", "only-a", "x")
	ca.Expect("only-a")
	cb.ExpectSilence(200 * time.Millisecond)
}

func TestPrivateChannelAuthorization(t *testing.T) {
	a := testApp("1")
	other := testApp("2")
	ts := startServer(t, config.Config{Apps: []apps.App{a, other}})
	good, sid := connect(t, ts, a.Key)
	good.Subscribe("private-room", channelToken(a, sid, "private-room", ""), "")
	good.Expect("pusher_internal:subscription_succeeded")

	forged := map[string]func(sid string) string{
		"wrong secret":  func(sid string) string { return auth.Token(a.Key, "nope", auth.ChannelString(sid, "private-room", "")) },
		"other socket":  func(sid string) string { return channelToken(a, "1.1", "private-room", "") },
		"other channel": func(sid string) string { return channelToken(a, sid, "private-elsewhere", "") },
		"other app":     func(sid string) string { return channelToken(other, sid, "private-room", "") },
		"no auth":       func(sid string) string { return "" },
		"malformed":     func(sid string) string { return "garbage" },
	}
	var refused []*wsClient
	for name, tok := range forged {
		c, sid := connect(t, ts, a.Key)
		c.Subscribe("private-room", tok(sid), "")
		m := c.Expect("pusher:subscription_error")
		var d struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		json.Unmarshal(m.Data, &d)
		if d.Type != "AuthError" || d.Status != 401 {
			t.Errorf("%s: subscription_error %s", name, m.Data)
		}
		e := c.Expect("pusher:error")
		if code, msg := errorData(t, e); code == nil || *code != 4009 || strings.Contains(msg, a.Secret) {
			t.Errorf("%s: pusher:error %s", name, e.Data)
		}
		refused = append(refused, c)
	}
	publish(t, ts, a.ID, "private-room", "secret-news", "x")
	good.Expect("secret-news")
	for _, c := range refused {
		c.ExpectSilence(100 * time.Millisecond)
		c.Alive()
	}
}

func TestEncryptedChannelRoutesButRefusesClientEvents(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, oneApp(a))
	c1, sid1 := connect(t, ts, a.Key)
	c2, sid2 := connect(t, ts, a.Key)
	ch := "private-encrypted-vault"
	c1.Subscribe(ch, channelToken(a, sid1, ch, ""), "")
	c2.Subscribe(ch, channelToken(a, sid2, ch, ""), "")
	c1.Expect("pusher_internal:subscription_succeeded")
	c2.Expect("pusher_internal:subscription_succeeded")
	cipher := `{"nonce":"bm9uY2U=","ciphertext":"Y2lwaGVy"}`
	publish(t, ts, a.ID, ch, "sealed", cipher)
	for _, c := range []*wsClient{c1, c2} {
		var got string
		json.Unmarshal(c.Expect("sealed").Data, &got)
		if got != cipher {
			t.Fatalf("ciphertext altered: %s", got)
		}
	}
	c1.Send(map[string]any{"event": "client-peek", "channel": ch, "data": map[string]any{}})
	if code, _ := errorData(t, c1.Expect("pusher:error")); code == nil || *code != 4301 {
		t.Fatalf("code %v, want 4301", code)
	}
	c2.ExpectSilence(200 * time.Millisecond)
}
