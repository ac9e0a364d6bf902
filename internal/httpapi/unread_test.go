package httpapi

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/auth"
)

// TestDuplicateAuthParams: a repeated auth parameter is refused whichever
// copy is valid, so that ?auth_signature=valid&auth_signature=bogus is not
// taken for a signed request.
func TestDuplicateAuthParams(t *testing.T) {
	body := `{"name":"e","data":"d","channel":"news"}`
	for _, p := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"} {
		for _, order := range []string{"valid first", "valid last"} {
			t.Run(p+"/"+order, func(t *testing.T) {
				f := newFixture(t)
				s := f.subscribe("news", "1.1")
				q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(body), f.now)
				raw := q.Encode()
				if order == "valid first" {
					raw += "&" + p + "=bogus"
				} else {
					raw = p + "=bogus&" + raw
				}
				status, got := f.raw("POST", "/apps/42/events?"+raw, body)
				var e struct{ Error string }
				if err := json.Unmarshal([]byte(got), &e); status != http.StatusUnauthorized || err != nil ||
					e.Error != "Duplicate parameter: "+p+" is given more than once" {
					t.Fatalf("status %d body %s, want 401 naming the duplicate %s", status, got, p)
				}
				if m := s.Messages(); len(m) != 0 {
					t.Fatalf("delivered %+v", m)
				}
			})
		}
	}
}

// exchange writes req on a new connection to addr and reads one response
// with its body; it also reports whether the server then closed the
// connection. The deadlines are generous because a loaded machine can be
// slow; a server that waited for a body that never comes still fails.
func exchange(t *testing.T, addr, req string) (resp *http.Response, body string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = br.ReadByte()
	return resp, strings.TrimSpace(string(b)), err == io.EOF
}

// TestRefusedWithoutReadingTheBody: a request whose app is unknown, whose
// declared body is over the app's limit, or whose signature does not hold
// is answered as soon as its head has arrived, without waiting for a body,
// and its connection is closed. A correctly signed one waits for its body.
func TestRefusedWithoutReadingTheBody(t *testing.T) {
	f := newFixture(t)
	var signed atomic.Int32
	f.api.cfg.Authenticated = func(*http.Request) { signed.Add(1) }
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	body := `{"name":"e","data":"d","channel":"news"}`
	sign := func(path string, body string, edit func(url.Values)) string {
		q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", path, nil, []byte(body), f.now)
		if edit != nil {
			edit(q)
		}
		return path + "?" + q.Encode()
	}
	head := func(target string, length int) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", target, length)
	}
	for _, tc := range []struct {
		name   string
		target string
		length int
		status int
		says   string
	}{
		{"unknown app", sign("/apps/999/events", body, nil), len(body), 404, "Unknown app"},
		{"unknown endpoint", sign("/apps/42/nothing", body, nil), len(body), 404, "no such endpoint"},
		{"declared body over the limit", sign("/apps/42/events", body, nil), 4097, 413, "4096 bytes"},
		{"unsigned", "/apps/42/events", len(body), 401, "Missing parameter: auth_key"},
		{"wrong secret", "/apps/42/events?" + auth.SignRequest(f.app.Key, "wrong", "POST", "/apps/42/events", nil, []byte(body), f.now).Encode(),
			len(body), 401, "Invalid signature"},
		{"body_md5 changed after signing", sign("/apps/42/events", body, func(q url.Values) { q.Set("body_md5", auth.BodyMD5([]byte("x"))) }),
			len(body), 401, "Invalid signature"},
		{"stale", "/apps/42/events?" + auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(body), f.now.Add(-time.Hour)).Encode(),
			len(body), 401, "Timestamp expired"},
		{"duplicate signature", sign("/apps/42/events", body, func(q url.Values) { q.Add("auth_signature", "bogus") }),
			len(body), 401, "Duplicate parameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The body is never sent: a server that waited for it would
			// not answer at all.
			resp, got, closed := exchange(t, addr, head(tc.target, tc.length))
			if resp.StatusCode != tc.status || !strings.Contains(got, tc.says) {
				t.Fatalf("answered %d %s, want %d saying %q", resp.StatusCode, got, tc.status, tc.says)
			}
			if !resp.Close { // ReadResponse takes "Connection: close" out of the header into Close
				t.Errorf("answer without Connection: close: %v", resp.Header)
			}
			if !closed {
				t.Error("connection left open after a refusal with its body unread")
			}
		})
	}
	if n := signed.Load(); n != 0 {
		t.Fatalf("Authenticated called %d times for refused requests", n)
	}

	// A signed request waits for its body, then is served.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, head(sign("/apps/42/events", body, nil), len(body)))
	// Once the head has been checked the server waits for the body; on a
	// loaded machine the check itself may take a while.
	for deadline := time.Now().Add(10 * time.Second); signed.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if n := signed.Load(); n != 1 {
		t.Fatalf("Authenticated called %d times before the body, want 1", n)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	br := bufio.NewReader(c)
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a signed request was answered before its body came")
	}
	io.WriteString(c, body)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 || resp.Close {
		t.Fatalf("signed request: %v, %v", resp, err)
	}
}

// TestBodyMD5CheckedAfterTheBody: a signed request whose body is not the
// one signed is refused once it has been read, as before, and the
// connection stays usable.
func TestBodyMD5CheckedAfterTheBody(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	signedBody := `{"name":"e","data":"d","channel":"news"}`
	sentBody := `{"name":"e","data":"x","channel":"news"}`
	q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(signedBody), f.now)
	resp, err := http.Post(srv.URL+"/apps/42/events?"+q.Encode(), "application/json", strings.NewReader(sentBody))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(b), "body_md5 does not match the body") || resp.Close {
		t.Fatalf("answered %d %s (close %v), want 401 about body_md5 on a kept connection", resp.StatusCode, b, resp.Close)
	}
}
