package appauth

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Whatever the body, the handler answers with one of its statuses and never
// signs a request it should refuse.
func FuzzChannelHandler(f *testing.F) {
	for _, s := range []string{
		"socket_id=1.2&channel_name=private-a",
		"&socket_id=1.2&channel_name[0]=private-a&channel_name[1]=presence-b&user_id=x",
		`{"socket_id":"1.2","channel_name":"presence-a"}`,
		`{"client":"c","channels":["$a"]}`,
		"socket_id=1.2&channel_name[99999999]=x",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	a, err := New(Options{Key: "k", Secret: "s", EncryptionMasterKey: make([]byte, 32),
		Decide: func(r *Request) Decision { return AllowUser("u", nil) }})
	if err != nil {
		f.Fatal(err)
	}
	h := a.ChannelHandler()
	f.Fuzz(func(t *testing.T, body string, isJSON bool) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		if isJSON {
			r.Header.Set("Content-Type", "application/json")
		} else {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case 200, 400, 403, 413:
		default:
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code != 200 && strings.Contains(w.Body.String(), `"auth"`) {
			t.Fatalf("a refusal carries a token: %s", w.Body)
		}
	})
}

func FuzzValidCallback(f *testing.F) {
	for _, s := range []string{"Pusher.auth_callbacks['1']", "alert(1);//", "Pusher.auth_callbacks['1']//", "Pusher.auth_callbacks['']"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidCallback(s) {
			return
		}
		n := strings.TrimSuffix(strings.TrimPrefix(s, "Pusher.auth_callbacks['"), "']")
		if n == "" || strings.Trim(n, "0123456789") != "" || len(s) > len("Pusher.auth_callbacks['']")+10 {
			t.Fatalf("accepted %q", s)
		}
	})
}
