package server

import (
	"bytes"
	"net/url"
	"testing"

	"github.com/heraldhq/herald/internal/http1"
)

// FuzzRequestTarget holds the fast path's request target and URL to what
// net/http makes of the same request line (its target is the text between
// the line's two spaces, parsed by url.ParseRequestURI), for every head
// http1.Parse accepts.
func FuzzRequestTarget(f *testing.F) {
	for _, t := range []string{
		"/apps/1/events", "/apps/1/events?", "/apps/1/events?&", "/apps/1/events??",
		"/apps/1/events?auth_key=k&body_md5=x", "/apps/1/batch_events?a=b?c", "/apps/1/events?%zz",
	} {
		f.Add("POST " + t + " HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var h http1.Head
		if http1.Parse([]byte(raw), &h) != http1.Complete {
			return
		}
		head := []byte(raw[:h.Len])
		var u url.URL
		got := requestTarget(head, &h, &u)
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		parts := bytes.Split(line, []byte(" "))
		if len(parts) != 3 {
			t.Fatalf("accepted request line %q", line)
		}
		want := string(parts[1])
		if got != want {
			t.Fatalf("target %q, want %q", got, want)
		}
		ref, err := url.ParseRequestURI(want)
		if err != nil {
			t.Fatalf("accepted target %q that net/http refuses: %v", want, err)
		}
		if u.Path != ref.Path || u.RawQuery != ref.RawQuery || u.ForceQuery != ref.ForceQuery {
			t.Fatalf("URL of %q: path %q query %q force %v, want %q %q %v", want, u.Path, u.RawQuery, u.ForceQuery, ref.Path, ref.RawQuery, ref.ForceQuery)
		}
	})
}
