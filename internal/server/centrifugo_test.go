package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/config"
)

// hs256 signs a JWT payload with key.
func hs256(key, payload string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

// centrifugoConnect sends a connect command at path and returns the first
// reply, or the close code and reason.
func centrifugoConnect(t *testing.T, ts *testServer, path, secret string) (string, int, string) {
	t.Helper()
	c := dial(t, ts, path)
	cmd := `{"connect":{"token":"` + hs256(secret, `{"sub":"u1"}`) + `","name":"js"},"id":1}`
	if err := wsutil.WriteClientText(c.Conn, []byte(cmd)); err != nil {
		t.Fatal(err)
	}
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := ws.ReadFrame(c.BR)
	if err != nil {
		t.Fatal(err)
	}
	if f.Header.Masked {
		ws.Cipher(f.Payload, f.Header.Mask, 0)
	}
	if f.Header.OpCode == ws.OpClose {
		code, why := ws.ParseCloseFrameData(f.Payload)
		return "", int(code), why
	}
	return string(f.Payload), 0, ""
}

// The Centrifugo front end serves a single app at /connection/websocket,
// and every app at /connection/websocket/{key}; with several apps the bare
// path is refused, as is an unknown key, with a reason.
func TestCentrifugoRoutes(t *testing.T) {
	for _, tr := range []string{"epoll", "goroutine"} {
		t.Run(tr, func(t *testing.T) {
			one := startServer(t, config.Config{Apps: []apps.App{testApp("1")}, Transport: tr})
			if msg, code, why := centrifugoConnect(t, one, "/connection/websocket", "secret-1"); !strings.Contains(msg, `"connect":{"client":`) {
				t.Fatalf("single app: %q, closed %d %q", msg, code, why)
			}
			two := startServer(t, config.Config{Apps: []apps.App{testApp("1"), testApp("2")}, Transport: tr})
			if msg, code, why := centrifugoConnect(t, two, "/connection/websocket/key-2", "secret-2"); !strings.Contains(msg, `"connect":{"client":`) {
				t.Fatalf("by key: %q, closed %d %q", msg, code, why)
			}
			for _, path := range []string{"/connection/websocket", "/connection/websocket/nope"} {
				if _, code, why := centrifugoConnect(t, two, path, "secret-1"); code != 3501 || why == "" {
					t.Fatalf("%s: closed %d %q, want 3501 with a reason", path, code, why)
				}
			}
			// Another app's secret does not sign for this one.
			if _, code, why := centrifugoConnect(t, two, "/connection/websocket/key-2", "secret-1"); code != 3500 || why != "invalid token" {
				t.Fatalf("wrong app's key: closed %d %q", code, why)
			}
		})
	}
}
