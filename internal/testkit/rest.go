package testkit

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/apps"
	"github.com/heraldhq/herald/internal/auth"
)

// SignedTarget is path with the query of a REST request signed as the
// app's backend signs it, at the current time.
func SignedTarget(a apps.App, method, path string, query url.Values, body string) string {
	return path + "?" + auth.SignRequest(a.Key, a.Secret, method, path, query, []byte(body), time.Now()).Encode()
}

// REST sends a signed REST request for app a to the node at addr
// (host:port) and returns the status and body, failing the test when the
// request cannot be made.
func REST(t *testing.T, addr string, a apps.App, method, path string, query url.Values, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+SignedTarget(a, method, path, query, body), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}
