package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/redistest"
)

// The server API is mounted at /api/<method> and /api: a publication
// reaches a Pusher subscriber with the event name from tags.event and the
// data as its JSON text.
func TestCentrifugoAPIRoutes(t *testing.T) {
	app := testApp("1")
	app.APIKey = "the-api-key"
	ts := startServer(t, config.Config{Apps: []apps.App{app, testApp("2")}})
	c, _ := connect(t, ts, "key-1")
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")

	post := func(path, body, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+ts.addr+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	if status, body := post("/api/publish", `{"channel":"news","data":{"n":1},"tags":{"event":"tick"}}`, "the-api-key"); status != 200 || body != `{"result":{}}` {
		t.Fatalf("publish: %d %s", status, body)
	}
	m := c.Expect("tick")
	if m.Channel != "news" || string(m.Data) != `"{\"n\":1}"` {
		t.Fatalf("Pusher client got %+v (data %s)", m, m.Data)
	}
	if status, body := post("/api", `{"method":"publish","params":{"channel":"news","data":[2]}}`, "the-api-key"); status != 200 || body != `{"result":{}}` {
		t.Fatalf("legacy publish: %d %s", status, body)
	}
	if m := c.Expect("message"); string(m.Data) != `"[2]"` {
		t.Fatalf("Pusher client got data %s", m.Data)
	}
	if status, _ := post("/api/publish", `{"channel":"news","data":{}}`, "wrong"); status != 401 {
		t.Fatalf("wrong key: %d", status)
	}
	if status, body := post("/api/info", `{}`, "the-api-key"); status != 200 || !strings.Contains(body, `"num_clients":1`) {
		t.Fatalf("info: %d %s", status, body)
	}
	res, err := http.Get("http://" + ts.addr + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 405 {
		t.Fatalf("GET /api/info: %d", res.StatusCode)
	}
}

// A server API publication reaches a Centrifugo subscriber with its data
// and tags.
func TestCentrifugoAPIToCentrifugoClient(t *testing.T) {
	app := testApp("1")
	app.APIKey = "the-api-key"
	ts := startServer(t, config.Config{Apps: []apps.App{app}})
	c := dial(t, ts, "/connection/websocket")
	read := func() string {
		t.Helper()
		c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			f, err := ws.ReadFrame(c.BR)
			if err != nil {
				t.Fatal(err)
			}
			if f.Header.OpCode == ws.OpClose {
				t.Fatalf("closed: %q", f.Payload)
			}
			if s := string(f.Payload); s != "{}" {
				return s
			}
		}
	}
	for _, cmd := range []string{
		`{"id":1,"connect":{"token":"` + hs256("secret-1", `{"sub":"u1"}`) + `"}}`,
		`{"id":2,"subscribe":{"channel":"news"}}`,
	} {
		if err := wsutil.WriteClientText(c.Conn, []byte(cmd)); err != nil {
			t.Fatal(err)
		}
		if got := read(); !strings.Contains(got, `"id":`) || strings.Contains(got, `"error"`) {
			t.Fatalf("%s: %s", cmd, got)
		}
	}
	req, _ := http.NewRequest("POST", "http://"+ts.addr+"/api/publish", strings.NewReader(`{"channel":"news","data":{"n":1},"tags":{"event":"tick","k":"v"}}`))
	req.Header.Set("Authorization", "apikey the-api-key")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("publish: %d", res.StatusCode)
	}
	if got, want := read(), `{"push":{"channel":"news","pub":{"data":{"n":1},"tags":{"event":"tick","k":"v"}}}}`; got != want {
		t.Fatalf("push %s, want %s", got, want)
	}
}

// In cluster mode, info names the node by its Redis broker node id, and a
// publication through one node's API reaches a subscriber of another.
func TestCentrifugoAPICluster(t *testing.T) {
	rs := redistest.Start(t)
	app := testApp("1")
	app.APIKey = "the-api-key"
	node := func(id string) *testServer {
		cfg := config.Config{Apps: []apps.App{app}}
		cfg.Redis = config.Redis{URL: rs.URL(), NodeID: id, NodeTTL: 3 * time.Second, RefreshInterval: time.Second}
		ts := startServer(t, cfg)
		waitForWithin(t, 10*time.Second, func() bool { code, _ := probe(t, ts, "/readyz"); return code == 200 })
		return ts
	}
	a, b := node("node-a"), node("node-b")
	c, _ := connect(t, b, "key-1")
	c.Subscribe("news", "", "")
	c.Expect("pusher_internal:subscription_succeeded")
	post := func(ts *testServer, path, body string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+ts.addr+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", "the-api-key")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return string(out)
	}
	if got := post(a, "/api/info", `{}`); !strings.Contains(got, `"uid":"node-a"`) {
		t.Fatalf("info: %s", got)
	}
	if got := post(a, "/api/publish", `{"channel":"news","data":"x","tags":{"event":"e"}}`); strings.TrimSpace(got) != `{"result":{}}` {
		t.Fatalf("publish: %s", got)
	}
	if m := c.Expect("e"); string(m.Data) != `"\"x\""` {
		t.Fatalf("data %s", m.Data)
	}
}
