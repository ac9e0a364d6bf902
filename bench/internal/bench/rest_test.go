package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/bench/internal/signature"
)

// checkSigned checks a signed REST request the way a Pusher server does. It
// is built on package signature, whose published vectors pin it down.
func checkSigned(key, secret, method, path string, q url.Values, body []byte, now time.Time) error {
	if q.Get("auth_key") != key {
		return fmt.Errorf("auth_key %q, want %q", q.Get("auth_key"), key)
	}
	if q.Get("auth_version") != "1.0" {
		return fmt.Errorf("auth_version %q", q.Get("auth_version"))
	}
	ts, err := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("auth_timestamp %q", q.Get("auth_timestamp"))
	}
	if d := now.Sub(time.Unix(ts, 0)); d >= 600*time.Second || d <= -600*time.Second {
		return fmt.Errorf("auth_timestamp %d is %v from now", ts, d)
	}
	if len(body) > 0 && q.Get("body_md5") != signature.BodyMD5(body) {
		return errors.New("body_md5 does not match the body")
	}
	if q.Get("auth_signature") != signature.HMAC(secret, signature.RequestString(method, path, q)) {
		return errors.New("bad auth_signature")
	}
	return nil
}

func TestPublishRequestIsSigned(t *testing.T) {
	now := time.Unix(1_763_000_000, 0)
	for _, base := range []string{"http://127.0.0.1:6001", "http://127.0.0.1:6001/", "https://push.example.com/pusher"} {
		c, err := newRESTClient(base, "app-id", "app-key", "app-secret", 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		data := AppendData(nil, Mark{Stream: 1, Seq: 2, TS: now.UnixNano()}, 100)
		body := appendPublishBody(nil, EventName, data, "hb-1")
		req, err := c.newPublish(context.Background(), body, now)
		if err != nil {
			t.Fatal(err)
		}
		if req.Method != "POST" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %s with content type %q", base, req.Method, req.Header.Get("Content-Type"))
		}
		// The server sees the path behind any prefix; the signature covers /apps/….
		wantPath := "/apps/app-id/events"
		if base == "https://push.example.com/pusher" {
			wantPath = "/pusher/apps/app-id/events"
		}
		if req.URL.Path != wantPath {
			t.Errorf("%s: path %q, want %q", base, req.URL.Path, wantPath)
		}
		if err := checkSigned("app-key", "app-secret", "POST", "/apps/app-id/events", req.URL.Query(), body, now.Add(time.Minute)); err != nil {
			t.Errorf("%s: %v", base, err)
		}
		if err := checkSigned("app-key", "other-secret", "POST", "/apps/app-id/events", req.URL.Query(), body, now); err == nil {
			t.Errorf("%s: verified with the wrong secret", base)
		}
		tampered := append([]byte(nil), body...)
		tampered[len(tampered)-3] ^= 1
		if err := checkSigned("app-key", "app-secret", "POST", "/apps/app-id/events", req.URL.Query(), tampered, now); err == nil {
			t.Errorf("%s: verified a tampered body", base)
		}
	}
	if _, err := newRESTClient("ws://x", "a", "k", "s", 1, time.Second); err == nil {
		t.Error("a ws:// REST base should be refused")
	}
}

func TestPublishBody(t *testing.T) {
	data := AppendData(nil, Mark{Stream: 1, Seq: 2, TS: 3}, 60)
	var one struct {
		Name, Data, Channel string
		Channels            []string
	}
	if err := json.Unmarshal(appendPublishBody(nil, EventName, data, "a"), &one); err != nil {
		t.Fatal(err)
	}
	if one.Name != EventName || one.Data != string(data) || one.Channel != "a" || one.Channels != nil {
		t.Errorf("one channel: %+v", one)
	}
	var many struct {
		Name, Data, Channel string
		Channels            []string
	}
	if err := json.Unmarshal(appendPublishBody(nil, EventName, data, "a", "b", "c"), &many); err != nil {
		t.Fatal(err)
	}
	if many.Data != string(data) || many.Channel != "" || len(many.Channels) != 3 || many.Channels[2] != "c" {
		t.Errorf("channels: %+v", many)
	}
}

func TestChannelToken(t *testing.T) {
	data := `{"user_id":"c1-2","user_info":{"hb_t":5}}`
	tok := channelToken("app-key", "app-secret", "123.456", "presence-a", data)
	if want := "app-key:" + signature.HMAC("app-secret", "123.456:presence-a:"+data); tok != want {
		t.Errorf("presence token %s, want %s", tok, want)
	}
	// The published vector (pusher docs, auth-signatures): private channel.
	tok = channelToken("278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", "")
	if tok != "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4" {
		t.Errorf("private token %s", tok)
	}
}
