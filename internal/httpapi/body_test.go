package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

// padded is a signed event body of exactly n bytes: trailing whitespace,
// which JSON allows and body_md5 covers.
func padded(data string, n int) string {
	ev := `{"name":"e","data":"` + data + `","channel":"news"}`
	return ev + strings.Repeat(" ", n-len(ev))
}

// chunked frames body as a chunked request body, in chunks of 1000 bytes.
func chunked(body string) string {
	var b strings.Builder
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}

// TestBodyLimits: a body exactly at the app's limit is served, by declared
// length or chunked, through the pooled buffer or, past its size, a buffer
// of its own; a chunked body one byte over is refused with 413 and
// nothing published; a body shorter than declared is refused.
func TestBodyLimits(t *testing.T) {
	for _, limit := range []int{4096, maxPooledBody, maxPooledBody + 4096} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			f := newFixture(t, func(a *apps.App) { a.MaxBodyBytes = limit })
			srv := httptest.NewServer(f.api)
			defer srv.Close()
			addr := srv.Listener.Addr().String()
			head := func(body string, framing string) string {
				q := auth.SignRequest(f.app.Key, f.app.Secret, "POST", "/apps/42/events", nil, []byte(body), f.now)
				return "POST /apps/42/events?" + q.Encode() + " HTTP/1.1\r\nHost: h\r\nConnection: close\r\n" + framing + "\r\n\r\n"
			}
			cases := []struct {
				name, req string
				status    int
				says      string
				delivered string
			}{
				{"declared, at the limit", head(padded("at", limit), fmt.Sprintf("Content-Length: %d", limit)) + padded("at", limit), 200, "{}", "at"},
				{"chunked, at the limit", head(padded("chunked", limit), "Transfer-Encoding: chunked") + chunked(padded("chunked", limit)), 200, "{}", "chunked"},
				{"chunked, one over", head(padded("over", limit+1), "Transfer-Encoding: chunked") + chunked(padded("over", limit+1)), 413, fmt.Sprintf("larger than %d bytes", limit), ""},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := f.subscribe("news", "1.1")
					defer f.hub.Unsubscribe(f.app.ID, "news", s)
					resp, got, _ := exchange(t, addr, tc.req)
					if resp.StatusCode != tc.status || !strings.Contains(got, tc.says) {
						t.Fatalf("answered %d %s, want %d saying %q", resp.StatusCode, got, tc.status, tc.says)
					}
					m := s.Messages()
					switch {
					case tc.delivered == "" && len(m) != 0:
						t.Fatalf("a refused body delivered %+v", m)
					case tc.delivered != "" && (len(m) != 1 || m[0].Data != tc.delivered):
						t.Fatalf("delivered %+v, want one event with data %q", m, tc.delivered)
					}
				})
			}

			t.Run("shorter than declared", func(t *testing.T) {
				s := f.subscribe("news", "1.1")
				defer f.hub.Unsubscribe(f.app.ID, "news", s)
				body := padded("short", limit)
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				io.WriteString(c, head(body, fmt.Sprintf("Content-Length: %d", limit))+body[:limit-1])
				c.(*net.TCPConn).CloseWrite()
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				got, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 400 || !strings.Contains(string(got), "Could not read the request body") {
					t.Fatalf("answered %d %s, want 400", resp.StatusCode, got)
				}
				if m := s.Messages(); len(m) != 0 {
					t.Fatalf("a cut-off body delivered %+v", m)
				}
			})
		})
	}
}

// TestExpectContinue: a client that waits for 100 Continue before sending
// its body gets it only once its signature holds, and keeps its
// connection; an unsigned one gets its refusal instead, and never sends
// the body.
func TestExpectContinue(t *testing.T) {
	f := newFixture(t)
	s := f.subscribe("news", "1.1")
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	body := `{"name":"e","data":"d","channel":"news"}`
	ask := func(secret string) (*http.Response, *bufio.Reader, net.Conn) {
		q := auth.SignRequest(f.app.Key, secret, "POST", "/apps/42/events", nil, []byte(body), f.now)
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /apps/42/events?%s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", q.Encode(), len(body))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no answer to the head: %v", err)
		}
		return resp, br, c
	}

	resp, _, c := ask("wrong")
	c.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a bad signature was answered %d before its body, want 401", resp.StatusCode)
	}

	resp, br, c := ask(f.app.Secret)
	defer c.Close()
	if resp.StatusCode != http.StatusContinue {
		t.Fatalf("a signed head was answered %d, want 100", resp.StatusCode)
	}
	io.WriteString(c, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the body: %v %v", resp, err)
	}
	// net/http keeps the connection only if the body was read to its
	// end, EOF seen: the pooled read stops at the declared length.
	if resp.Close {
		t.Fatal("the connection was closed after a 100-continue publish")
	}
	if m := s.Messages(); len(m) != 1 || m[0].Data != "d" {
		t.Fatalf("delivered %+v, want the one signed event", m)
	}
}
