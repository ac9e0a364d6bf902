package devauth

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/auth"
	"github.com/heraldhq/herald/internal/jwtauth"
)

func TestHandler(t *testing.T) {
	h, err := Handler(Options{Key: "k", Secret: "s", Deny: []string{"private-no-"}, AllowedOrigins: []string{"http://a.example:1"}})
	if err != nil {
		t.Fatal(err)
	}
	do := func(path, body string) (int, map[string]string) {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]string
		json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	code, out := do(ChannelPath, "socket_id=1.2&channel_name=presence-a&user_id=bob&user_info=%7B%22name%22%3A%22Bob%22%7D")
	if code != 200 || out["channel_data"] != `{"user_id":"bob","user_info":{"name":"Bob"}}` {
		t.Fatalf("%d %v", code, out)
	}
	if err := auth.VerifyToken("k", "s", out["auth"], auth.ChannelString("1.2", "presence-a", out["channel_data"])); err != nil {
		t.Error(err)
	}
	// Without user_id, a generated user.
	code, out = do(ChannelPath, "socket_id=1.2&channel_name=presence-a")
	if code != 200 || !strings.HasPrefix(out["channel_data"], `{"user_id":"user-`) {
		t.Fatalf("%d %v", code, out)
	}
	for _, body := range []string{
		"socket_id=1.2&channel_name=private-no-x",
		"socket_id=1.2&channel_name=presence-a&user_id=a%20b",
		"socket_id=1.2&channel_name=presence-a&user_info=%7Bnope",
	} {
		if code, _ := do(ChannelPath, body); code != 403 {
			t.Errorf("%s: %d, want 403", body, code)
		}
	}
	code, out = do(UserPath, "socket_id=1.2&user_id=carol")
	if code != 200 || out["user_data"] != `{"id":"carol"}` {
		t.Errorf("user: %d %v", code, out)
	}
	// Not the development app: CORS only for the allowlist.
	r := httptest.NewRequest("OPTIONS", ChannelPath, nil)
	r.Header.Set("Origin", "http://b.example:1")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("preflight from another origin: %d", w.Code)
	}
}

func TestAnyOrigin(t *testing.T) {
	h, _ := Handler(Options{Key: "k", Secret: "s", AnyOrigin: true})
	r := httptest.NewRequest("OPTIONS", ChannelPath, nil)
	r.Header.Set("Origin", "http://b.example:1")
	r.Header.Set("Access-Control-Request-Method", "POST")
	r.Header.Set("Access-Control-Request-Headers", "x-csrf-token")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 204 || w.Header().Get("Access-Control-Allow-Origin") != "*" || w.Header().Get("Access-Control-Allow-Headers") != "x-csrf-token" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}

// The subscription tokens of Centrifuge batches carry the app's audience
// and issuer, without which Herald refuses them.
func TestHandlerTokensCarryAudienceIssuer(t *testing.T) {
	h, err := Handler(Options{Key: "k", Secret: "s", JWTSecret: "j", JWTAudience: "aud-1", JWTIssuer: "iss-1"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", ChannelPath, strings.NewReader(`{"client":"c-1","channels":["$a"]}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	v, _ := jwtauth.NewVerifier(jwtauth.Keys{HMAC: []byte("j"), Audience: "aud-1", Issuer: "iss-1"})
	if _, err := v.Subscribe(out["$a"].Token, time.Now()); err != nil {
		t.Fatal(err)
	}
}
