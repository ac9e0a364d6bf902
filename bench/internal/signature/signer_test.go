package signature_test

import (
	"net/url"
	"testing"

	"github.com/heraldhq/herald/bench/internal/signature"
)

// checkAgainstRequest compares Signer's query with Request's, parameter by
// parameter: Request is what the vectors pin down.
func checkAgainstRequest(t *testing.T, s *signature.Signer, key, secret, method, path string, body []byte, ts int64) {
	t.Helper()
	q, err := url.ParseQuery(string(s.AppendQuery(nil, method, path, body, ts)))
	if err != nil {
		t.Fatalf("query does not parse: %v", err)
	}
	want := signature.Request(key, secret, method, path, nil, body, ts)
	if q.Encode() != want.Encode() {
		t.Fatalf("key %q, path %q, body %q:\n got %s\nwant %s", key, path, body, q.Encode(), want.Encode())
	}
}

func TestSignerMatchesRequest(t *testing.T) {
	tests := []struct {
		key, secret, method, path, body string
		ts                              int64
	}{
		// R-vector shapes: the SDK trigger and batch bodies.
		{"278d425bdf160c739803", "7ad3773142a6692b25b8", "POST", "/apps/3/events",
			`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`, 1353088179},
		{"app-key", "app-secret", "POST", "/apps/app-id/batch_events", `{"batch":[{"name":"a","channel":"b","data":"c"}]}`, 1763000000},
		{"app-key", "app-secret", "post", "/apps/app-id/events", `{}`, 1},
		{"app-key", "app-secret", "GET", "/apps/app-id/channels", "", 1763000000},
		// A key that must be escaped in the URL, and signed as it is.
		{"key with space&=+", "s", "POST", "/apps/1/events", "x", 1763000000},
	}
	for _, tt := range tests {
		s := signature.NewSigner(tt.key, tt.secret)
		// Twice: the second signature comes from the reset, pre-keyed HMAC.
		checkAgainstRequest(t, s, tt.key, tt.secret, tt.method, tt.path, []byte(tt.body), tt.ts)
		checkAgainstRequest(t, s, tt.key, tt.secret, tt.method, tt.path, []byte(tt.body), tt.ts+1)
	}
}

func TestSignerAllocs(t *testing.T) {
	s := signature.NewSigner("app-key", "app-secret")
	body := []byte(`{"name":"herald-bench","channel":"hb-1","data":"{\"hb\":\"0.1.2\"}"}`)
	dst := s.AppendQuery(nil, "POST", "/apps/app-id/events", body, 1763000000)
	if n := testing.AllocsPerRun(100, func() {
		dst = s.AppendQuery(dst[:0], "POST", "/apps/app-id/events", body, 1763000000)
	}); n != 0 {
		t.Errorf("%v allocations per signature, want 0", n)
	}
}

// FuzzSignerMatchesRequest: for any key, secret, path and body the fast
// signer sends exactly what Request would.
func FuzzSignerMatchesRequest(f *testing.F) {
	f.Add("app-key", "app-secret", "/apps/app-id/events", []byte(`{"name":"a"}`), int64(1763000000))
	f.Add("k y", "", "/", []byte(nil), int64(-1))
	f.Fuzz(func(t *testing.T, key, secret, path string, body []byte, ts int64) {
		s := signature.NewSigner(key, secret)
		checkAgainstRequest(t, s, key, secret, "POST", path, body, ts)
	})
}
