package pusher

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/heraldhq/herald/internal/apps"
)

// channelJWT is a subscription token as an app's backend signs it, with the
// app secret (newTestNode's "secret") unless key is given.
func channelJWT(t *testing.T, claims jwt.MapClaims, key ...string) string {
	t.Helper()
	secret := "secret"
	if len(key) > 0 {
		secret = key[0]
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (tc *testConn) subscribeAuth(name, auth string) {
	tc.t.Helper()
	tc.sendJSON(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": name, "auth": auth}})
}

// expectAuthRefused checks the refusal of a bad channel auth, the same for a
// JWT as for a bad HMAC signature: 401 and pusher:error 4009.
func (tc *testConn) expectAuthRefused(ch, why string) {
	tc.t.Helper()
	got := tc.expect("pusher:subscription_error", "pusher:error")
	var e subError
	if err := json.Unmarshal(got[0].Data, &e); err != nil {
		tc.t.Fatal(err)
	}
	if got[0].Channel != ch || e.Type != errTypeAuth || e.Status != 401 || errorCode(tc.t, got[1]) != int(CodeUnauthorized) || !strings.Contains(e.Error, why) {
		tc.t.Fatalf("refusal %s, want %s 401/4009 saying %q", dump(got), ch, why)
	}
	if _, ok := tc.subs.get(ch); ok {
		tc.t.Fatalf("refused channel %s recorded", ch)
	}
}

func TestPusherJWTAuth(t *testing.T) {
	n := newTestNode(t, apps.App{PusherJWTAuth: true})
	exp := time.Now().Add(time.Hour).Unix()

	t.Run("private, bound to the socket id", func(t *testing.T) {
		c := n.connect(t)
		c.subscribeAuth("private-a", channelJWT(t, jwt.MapClaims{"channel": "private-a", "client": c.socketID(), "exp": exp}))
		c.expect("pusher_internal:subscription_succeeded")
	})
	t.Run("private, bound to the signed-in user", func(t *testing.T) {
		c := n.connect(t)
		c.signin(`{"id":"alice"}`)
		c.expect("pusher:signin_success")
		c.subscribeAuth("private-encrypted-a", channelJWT(t, jwt.MapClaims{"channel": "private-encrypted-a", "sub": "alice"}))
		c.expect("pusher_internal:subscription_succeeded")
	})
	t.Run("presence, member from sub and info", func(t *testing.T) {
		watcher := n.connect(t)
		watcher.subscribe("presence-room", `{"user_id":"w"}`)
		watcher.expect("pusher_internal:subscription_succeeded")
		c := n.connect(t)
		c.subscribeAuth("presence-room", channelJWT(t, jwt.MapClaims{"channel": "presence-room", "client": c.socketID(), "sub": "u7", "info": map[string]string{"name": "Ann"}, "exp": exp}))
		got := c.expect("pusher_internal:subscription_succeeded")
		var d struct {
			Presence struct {
				IDs  []string                   `json:"ids"`
				Hash map[string]json.RawMessage `json:"hash"`
			} `json:"presence"`
		}
		var raw string
		if err := json.Unmarshal(got[0].Data, &raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatal(err)
		}
		if string(d.Presence.Hash["u7"]) != `{"name":"Ann"}` || len(d.Presence.IDs) != 2 {
			t.Errorf("presence %s", raw)
		}
		added := watcher.expect("pusher_internal:member_added")
		if !strings.Contains(string(added[0].Data), `u7`) || !strings.Contains(string(added[0].Data), `Ann`) {
			t.Errorf("member_added %s", added[0].Data)
		}
	})
	t.Run("presence, signed in, sub only", func(t *testing.T) {
		c := n.connect(t)
		c.signin(`{"id":"bob"}`)
		c.expect("pusher:signin_success")
		c.subscribeAuth("presence-b", channelJWT(t, jwt.MapClaims{"channel": "presence-b", "sub": "bob"}))
		c.expect("pusher_internal:subscription_succeeded")
	})
	t.Run("HMAC auth still works", func(t *testing.T) {
		c := n.connect(t)
		c.subscribe("private-h", "")
		c.subscribe("presence-h", `{"user_id":"h"}`)
		c.expect("pusher_internal:subscription_succeeded", "pusher_internal:subscription_succeeded")
		c.subscribeAuth("private-h2", "key:0000")
		c.expectAuthRefused("private-h2", "Invalid signature")
	})

	for _, tc := range []struct {
		name, ch string
		signin   string
		claims   func(c *testConn) jwt.MapClaims
		key      string
		why      string
	}{
		{name: "wrong channel", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-b", "client": c.socketID()}
		}, why: "another channel"},
		{name: "wrong client", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "client": "1.2"}
		}, why: "another socket id"},
		{name: "wrong sub", ch: "private-a", signin: `{"id":"alice"}`, claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "sub": "mallory"}
		}, why: "another user"},
		{name: "right client, wrong sub of a signed-in user", ch: "presence-a", signin: `{"id":"alice"}`, claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "presence-a", "sub": "mallory", "client": c.socketID()}
		}, why: "another user"},
		{name: "sub without sign-in", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "sub": "alice"}
		}, why: "needs client"},
		{name: "neither client nor sub", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a"}
		}, why: "needs client"},
		{name: "presence without sub", ch: "presence-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "presence-a", "client": c.socketID()}
		}, why: "needs a sub"},
		{name: "expired", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "client": c.socketID(), "exp": time.Now().Add(-time.Second).Unix()}
		}, why: "expired"},
		{name: "expired presence", ch: "presence-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "presence-a", "client": c.socketID(), "sub": "u", "exp": time.Now().Add(-time.Second).Unix()}
		}, why: "expired"},
		// Valid, but what it grants has expired already: accepted, the
		// subscription would end the connection (4200) at once, and
		// pusher-js would reconnect with the same token in a loop.
		{name: "expire_at passed", ch: "private-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "client": c.socketID(), "expire_at": time.Now().Add(-time.Minute).Unix()}
		}, why: "expired"},
		{name: "expire_at passed, presence", ch: "presence-a", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "presence-a", "client": c.socketID(), "sub": "u", "expire_at": time.Now().Add(-time.Minute).Unix()}
		}, why: "expired"},
		{name: "another secret", ch: "private-a", key: "not-the-secret", claims: func(c *testConn) jwt.MapClaims {
			return jwt.MapClaims{"channel": "private-a", "client": c.socketID()}
		}, why: "bad signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := n.connect(t)
			if tc.signin != "" {
				c.signin(tc.signin)
				c.expect("pusher:signin_success")
			}
			var tok string
			if tc.key != "" {
				tok = channelJWT(t, tc.claims(c), tc.key)
			} else {
				tok = channelJWT(t, tc.claims(c))
			}
			c.subscribeAuth(tc.ch, tok)
			c.expectAuthRefused(tc.ch, tc.why)
		})
	}

	t.Run("feature off", func(t *testing.T) {
		off := newTestNode(t, apps.App{})
		c := off.connect(t)
		c.subscribeAuth("private-a", channelJWT(t, jwt.MapClaims{"channel": "private-a", "client": c.socketID()}))
		c.expectAuthRefused("private-a", "Invalid format")
		c.subscribeAuth("presence-a", channelJWT(t, jwt.MapClaims{"channel": "presence-a", "client": c.socketID(), "sub": "u"}))
		c.expect("pusher:subscription_error", "pusher:error")
	})
}

// A subscription whose JWT expires ends the connection with 4200 at the
// expiry, on the session's one timer, which keeps its liveness duty.
func TestPusherJWTExpiry(t *testing.T) {
	sub := func(cs *clockedSession, ch string, exp time.Time) {
		cs.t.Helper()
		claims := jwt.MapClaims{"channel": ch, "client": cs.socketID()}
		if !exp.IsZero() {
			claims["exp"] = exp.Unix()
		}
		b, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": ch, "auth": channelJWT(cs.t, claims)}})
		cs.HandleMessage(b)
		cs.expect("pusher_internal:subscription_succeeded")
	}
	app := apps.App{PusherJWTAuth: true}

	t.Run("closes at expiry", func(t *testing.T) {
		cs := newClockedSession(t, app)
		sub(cs, "private-none", time.Time{})
		sub(cs, "private-late", cs.clock.Now().Add(time.Hour))
		sub(cs, "private-soon", cs.clock.Now().Add(10*time.Second))
		cs.clock.Advance(9 * time.Second)
		cs.expect()
		if code, _, _ := cs.tr.Closed(); code != 0 {
			t.Fatalf("closed %d before the expiry", code)
		}
		cs.clock.Advance(time.Second)
		frames := cs.tr.Take()
		if len(frames) != 1 || !strings.Contains(string(frames[0]), `"pusher:error"`) || !strings.Contains(string(frames[0]), `"code":4200`) {
			t.Fatalf("sent %q, want pusher:error 4200", frames)
		}
		if code, reason, aborted := cs.tr.Closed(); code != int(CodeReconnect) || aborted || reason != MsgTokenExpired {
			t.Fatalf("closed %d %q (aborted %v), want 4200", code, reason, aborted)
		}
	})
	// "exp": 9999999999, a common "never", is in 2286: past the int64
	// nanoseconds that end in 2262, and not to be taken for a date before
	// 1970.
	t.Run("an expiry past 2262 is kept", func(t *testing.T) {
		cs := newClockedSession(t, app)
		sub(cs, "private-a", time.Unix(9999999999, 0))
		cs.clock.Advance(120 * time.Second)
		cs.expect("pusher:ping")
		if code, _, _ := cs.tr.Closed(); code != 0 {
			t.Fatalf("closed %d, want the subscription kept", code)
		}
		cs.clock.Advance(time.Second)
		cs.tr.SetLastRead(cs.clock.Now()) // the pong
		cs.clock.Advance(120 * time.Second)
		cs.expect("pusher:ping")
		if code, _, _ := cs.tr.Closed(); code != 0 {
			t.Fatalf("closed %d at the second ping, want the subscription kept", code)
		}
	})
	t.Run("liveness unchanged by a later expiry", func(t *testing.T) {
		cs := newClockedSession(t, app)
		sub(cs, "private-a", cs.clock.Now().Add(200*time.Second))
		cs.clock.Advance(119 * time.Second)
		cs.expect()
		cs.clock.Advance(time.Second)
		cs.expect("pusher:ping")
		cs.clock.Advance(time.Second)
		cs.tr.SetLastRead(cs.clock.Now()) // the pong
		cs.clock.Advance(78 * time.Second)
		cs.expect()
		cs.clock.Advance(time.Second)
		cs.expect("pusher:error")
		if code, _, _ := cs.tr.Closed(); code != int(CodeReconnect) || cs.clock.Now().Unix() != 1_700_000_200 {
			t.Fatalf("closed %d at 200s, want 4200", code)
		}
	})
	t.Run("left before expiry", func(t *testing.T) {
		cs := newClockedSession(t, app)
		sub(cs, "private-a", cs.clock.Now().Add(10*time.Second))
		b, _ := json.Marshal(map[string]any{"event": "pusher:unsubscribe", "data": map[string]string{"channel": "private-a"}})
		cs.HandleMessage(b)
		cs.clock.Advance(119 * time.Second)
		cs.expect()
		if code, _, _ := cs.tr.Closed(); code != 0 {
			t.Fatalf("closed %d for a subscription it left", code)
		}
		cs.clock.Advance(time.Second)
		cs.expect("pusher:ping")
	})
}
