package httpapi

import (
	"net/url"
	"testing"

	"github.com/heraldhq/herald/internal/auth"
)

// TestVerifiersAreEachApps: each app's requests are checked with its own
// keyed HMAC, whichever app's was used last; one app's credentials never
// pass for another's id; and a verifier made for an app's secret is not
// used once that secret is another.
func TestVerifiersAreEachApps(t *testing.T) {
	f := newFixture(t)
	off := f.api.cfg.Apps.ByID("43")
	enabled := true
	off.Enabled = &enabled
	body := `{"name":"e","data":"d","channel":"news"}`
	send := func(id, key, secret string) int {
		path := "/apps/" + id + "/events"
		q := auth.SignRequest(key, secret, "POST", path, url.Values{}, []byte(body), f.now)
		status, _ := f.raw("POST", path+"?"+q.Encode(), body)
		return status
	}
	for range 3 {
		for _, tc := range []struct {
			id, key, secret string
			want            int
		}{
			{"42", "the-key", "the-secret", 200},
			{"43", "off-key", "off-secret", 200},
			{"43", "the-key", "the-secret", 401},
			{"42", "off-key", "off-secret", 401},
			{"42", "the-key", "off-secret", 401},
			{"43", "off-key", "the-secret", 401},
		} {
			if got := send(tc.id, tc.key, tc.secret); got != tc.want {
				t.Fatalf("app %s signed with %s/%s: %d, want %d", tc.id, tc.key, tc.secret, got, tc.want)
			}
		}
	}
	app := f.api.cfg.Apps.ByID("42")
	app.Secret = "a-new-secret"
	if got := send("42", "the-key", "the-secret"); got != 401 {
		t.Fatalf("the old secret after a change: %d, want 401", got)
	}
	if got := send("42", "the-key", "a-new-secret"); got != 200 {
		t.Fatalf("the new secret: %d, want 200", got)
	}
}
