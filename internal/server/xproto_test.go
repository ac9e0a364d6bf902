package server

import (
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit"
)

// centrifugoClient connects a raw Centrifugo client to the node's one app
// with a connection token for user, and returns it after the connect reply.
func centrifugoClient(t *testing.T, ts *testServer, secret, user string) *wsClient {
	t.Helper()
	c := dial(t, ts, "/connection/websocket")
	centrifugoSend(t, c, `{"id":1,"connect":{"token":"`+hs256(secret, `{"sub":"`+user+`"}`)+`"}}`)
	if got, code, _ := centrifugoRead(t, c); !strings.Contains(got, `"connect":{"client":`) {
		t.Fatalf("connect: %q, closed %d", got, code)
	}
	return c
}

func centrifugoSend(t *testing.T, c *wsClient, cmd string) {
	t.Helper()
	if err := wsutil.WriteClientText(c.Conn, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
}

// centrifugoRead returns the next message other than a ping, or the close
// code and reason.
func centrifugoRead(t *testing.T, c *wsClient) (string, int, string) {
	t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		f, err := ws.ReadFrame(c.BR)
		if err != nil {
			t.Fatal(err)
		}
		if f.Header.OpCode == ws.OpClose {
			code, why := ws.ParseCloseFrameData(f.Payload)
			return "", int(code), why
		}
		if s := string(f.Payload); s != "{}" {
			return s, 0, ""
		}
	}
}

// Users are one namespace across the front ends: a Centrifugo connection
// whose token names a user counts as that user signed in. A Pusher
// watchlist sees it online and then offline, and the REST API's
// terminate_connections closes it, with Centrifugo's code.
func TestUsersAcrossProtocols(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	w, sid := connect(t, ts, a.Key)
	ud := `{"id":"watcher","watchlist":["u1"]}`
	w.Send(map[string]any{"event": "pusher:signin", "data": map[string]string{
		"auth": auth.Token(a.Key, a.Secret, auth.UserString(sid, ud)), "user_data": ud}})
	w.Expect("pusher:signin_success")
	if m := w.Expect("pusher_internal:watchlist_events"); !strings.Contains(string(m.Data), `"offline"`) {
		t.Fatalf("watchlist before: %s", m.Data)
	}

	c := centrifugoClient(t, ts, a.Secret, "u1")
	if m := w.Expect("pusher_internal:watchlist_events"); !strings.Contains(string(m.Data), `"online"`) || !strings.Contains(string(m.Data), `u1`) {
		t.Fatalf("watchlist after the Centrifugo connect: %s", m.Data)
	}
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/users/u1/terminate_connections", nil, "{}"); code != 200 {
		t.Fatalf("terminate_connections: %d %s", code, body)
	}
	if _, code, why := centrifugoRead(t, c); code != 3503 || why != "force disconnect" {
		t.Fatalf("closed %d %q, want 3503", code, why)
	}
	w.Expect("pusher_internal:watchlist_events")
}

// A Centrifugo token's sub may be any text, an Auth0 id among others:
// terminate_connections reaches such a user too, not only ids a Pusher
// sign-in may have.
func TestTerminateUserWithAnyID(t *testing.T) {
	a := testApp("1")
	ts := startServer(t, config.Config{Apps: []apps.App{a}})
	c := centrifugoClient(t, ts, a.Secret, "auth0|5f3c")
	if code, body := testkit.REST(t, ts.addr, a, "POST", "/apps/1/users/auth0|5f3c/terminate_connections", nil, "{}"); code != 200 {
		t.Fatalf("terminate_connections: %d %s", code, body)
	}
	if _, code, why := centrifugoRead(t, c); code != 3503 || why != "force disconnect" {
		t.Fatalf("closed %d %q, want 3503", code, why)
	}
}
