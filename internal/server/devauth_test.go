package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/heraldhq/herald/internal/config"
	"github.com/heraldhq/herald/internal/testkit/pusherclient"
)

// A node serving the development app authorizes its own clients at
// /pusher/auth and /pusher/user-auth; one serving configured apps has no
// such endpoint.
func TestDevAppServesAuthEndpoints(t *testing.T) {
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	c, socketID := pusherclient.Connect(t, ts.addr, config.DevAppKey)

	post := func(path string, form url.Values, origin string) (*http.Response, map[string]string) {
		req, _ := http.NewRequest("POST", "http://"+ts.addr+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}

	resp, auth := post("/pusher/auth", url.Values{"socket_id": {socketID}, "channel_name": {"presence-room"}, "user_id": {"carol"}}, "http://localhost:3000")
	if resp.StatusCode != 200 || auth["auth"] == "" {
		t.Fatalf("%d %v", resp.StatusCode, auth)
	}
	// Any page may use it: the credentials are public anyway.
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q", got)
	}
	c.Subscribe("presence-room", auth["auth"], auth["channel_data"])
	m := c.Expect("pusher_internal:subscription_succeeded")
	if !strings.Contains(string(m.Data), "carol") {
		t.Errorf("subscription_succeeded %s", m.Data)
	}

	resp, user := post("/pusher/user-auth", url.Values{"socket_id": {socketID}, "user_id": {"carol"}}, "")
	if resp.StatusCode != 200 {
		t.Fatalf("user-auth %d", resp.StatusCode)
	}
	c.Send(map[string]any{"event": "pusher:signin", "data": map[string]string{"auth": user["auth"], "user_data": user["user_data"]}})
	c.Expect("pusher:signin_success")

	// A configured app: no development endpoints.
	other := startServer(t, config.Config{Apps: cfg.Apps[:1]})
	r, err := http.Post("http://"+other.addr+"/pusher/auth", "application/x-www-form-urlencoded", strings.NewReader("socket_id=1.2&channel_name=private-a"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 404 {
		t.Errorf("a configured app's node answered /pusher/auth with %d", r.StatusCode)
	}
}
