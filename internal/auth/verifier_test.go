package auth_test

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/auth"
)

// referenceVerify is what the REST API did before RequestVerifier: parse
// the query with url.URL.Query, verify it, and retry a bad signature with
// the escaped path.
func referenceVerify(key, secret, method, path, altPath, rawQuery string, body []byte, now time.Time) error {
	q := (&url.URL{RawQuery: rawQuery}).Query()
	err := auth.VerifyRequestQuery(key, secret, method, path, q, now)
	if err != nil && errors.Is(err, auth.ErrBadSignature) && altPath != "" {
		if auth.VerifyRequestQuery(key, secret, method, altPath, q, now) == nil {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	return auth.VerifyBodyMD5(q, body)
}

func fastVerify(v *auth.RequestVerifier, method, path, altPath, rawQuery string, body []byte, now time.Time) error {
	s, err := v.VerifyQuery(method, path, altPath, rawQuery, now)
	if err != nil {
		return err
	}
	return s.VerifyBody(body)
}

func sameError(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

// signedQuery returns raw with an auth_signature appended that is right for
// whatever url.ParseQuery makes of raw.
func signedQuery(secret, method, path, raw string) string {
	q, _ := url.ParseQuery(raw)
	sig := auth.Sign(secret, auth.RequestString(method, path, q))
	if raw != "" {
		raw += "&"
	}
	return raw + "auth_signature=" + sig
}

func TestRequestVerifierMatchesVerifyRequest(t *testing.T) {
	const key, secret = "278d425bdf160c739803", "7ad3773142a6692b25b8"
	now := time.Unix(1353088179, 0)
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	base := "auth_key=" + key + "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" + auth.BodyMD5(body)
	v := auth.NewRequestVerifier(key, secret)
	cases := []struct {
		name, method, path, alt, raw string
		body                         []byte
		ok                           bool
	}{
		{"sdk", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", base), body, true},
		{"lower-case method", "post", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", base), body, true},
		{"wrong body", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", base), []byte("{}"), false},
		{"no body", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", base), nil, true},
		{"wrong path", "POST", "/apps/4/events", "", signedQuery(secret, "POST", "/apps/3/events", base), body, false},
		{"escaped path", "GET", "/apps/3/channels/a#b", "/apps/3/channels/a%23b", signedQuery(secret, "GET", "/apps/3/channels/a%23b", base), body, true},
		{"neither path", "GET", "/apps/3/channels/a#b", "/apps/3/channels/a%23b", signedQuery(secret, "GET", "/apps/3/channels/x", base), body, false},
		{"escapes", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&filter_by_prefix=presence%2D&info=user_count"), nil, true},
		{"upper-case key", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&Info=x"), nil, true},
		{"repeated key", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&info=a&info=b"), nil, true},
		{"repeated auth key", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&AUTH_KEY="+key), nil, false},
		{"semicolon", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&a;b=c"), nil, true},
		{"missing version", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", "auth_key="+key+"&auth_timestamp=1353088179"), nil, false},
		{"wrong key", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", "auth_key=x&auth_timestamp=1353088179&auth_version=1.0"), nil, false},
		{"stale", "POST", "/apps/3/events", "", signedQuery(secret, "POST", "/apps/3/events", "auth_key="+key+"&auth_timestamp="+strconv.Itoa(1353088179-601)+"&auth_version=1.0"), nil, false},
		{"many params", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12"), nil, true},
		{"empty pairs", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", "&&"+base+"&&"), nil, true},
		{"empty key", "GET", "/apps/3/channels", "", signedQuery(secret, "GET", "/apps/3/channels", base+"&=x"), nil, true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			want := referenceVerify(key, secret, tt.method, tt.path, tt.alt, tt.raw, tt.body, now)
			got := fastVerify(v, tt.method, tt.path, tt.alt, tt.raw, tt.body, now)
			if !sameError(got, want) {
				t.Fatalf("VerifyQuery: %v, want %v", got, want)
			}
			if (got == nil) != tt.ok {
				t.Fatalf("VerifyQuery: %v, want success %v", got, tt.ok)
			}
		})
	}
}

// TestRequestVerifierAllocs: the verifier runs on every REST request; an
// SDK's query and body are checked without allocating.
func TestRequestVerifierAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	const key, secret = "k", "s"
	body := []byte(`{"name":"tick","data":"x","channel":"bench"}`)
	now := time.Now()
	q := auth.SignRequest(key, secret, "POST", "/apps/1/events", nil, body, now).Encode()
	v := auth.NewRequestVerifier(key, secret)
	allocs := testing.AllocsPerRun(1000, func() {
		s, err := v.VerifyQuery("POST", "/apps/1/events", "", q, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyBody(body); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 0 {
		t.Fatalf("verifying a signed request allocates %.1f times; want 0", allocs)
	}
}

// FuzzRequestVerifier checks RequestVerifier against VerifyRequestQuery and
// VerifyBodyMD5 on url.URL.Query's reading of the same query: the same
// verdict and the same error, for queries signed right or not at all.
func FuzzRequestVerifier(f *testing.F) {
	f.Add("auth_key=k&auth_timestamp=1000&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b", "POST", "/apps/1/events", "", []byte("{}"), int64(0), true)
	f.Add("auth_key=k&auth_timestamp=1000&auth_version=1.0", "GET", "/apps/1/channels/a#b", "/apps/1/channels/a%23b", []byte(nil), int64(599), true)
	f.Add("auth_key=k&auth_timestamp=1000&auth_version=1.0&info=a&INFO=b", "GET", "/apps/1/channels", "", []byte(nil), int64(-600), true)
	f.Add("auth_key=k&auth_timestamp=1000&auth_version=1.0&auth_signature=00&auth_key=k", "POST", "/apps/1/events", "", []byte("x"), int64(0), false)
	f.Add("auth_key=k&auth_timestamp=+1000&auth_version=1%2E0&a;b&=c&&d", "post", "/", "", []byte(nil), int64(1), true)
	f.Add("auth_key=k&auth_timestamp=1000&auth_version=1.0&body_md5=x&auth_\u212aey=k", "POST", "/apps/1/events", "", []byte("x"), int64(0), true)
	v := auth.NewRequestVerifier("k", "s")
	f.Fuzz(func(t *testing.T, raw, method, path, alt string, body []byte, skew int64, sign bool) {
		now := time.Unix(1000+skew, 0)
		if sign {
			raw = signedQuery("s", method, path, raw)
		}
		want := referenceVerify("k", "s", method, path, alt, raw, body, now)
		got := fastVerify(v, method, path, alt, raw, body, now)
		if !sameError(got, want) {
			t.Fatalf("query %q: VerifyQuery: %v, want %v", raw, got, want)
		}
	})
}
