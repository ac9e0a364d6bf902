package auth_test

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldhq/herald/internal/auth"
)

// requestVectors are the published REST signing vectors (reference §8.3,
// R1–R12). toSign is the exact string to sign; body is the request body
// where the source states it.
var requestVectors = []struct {
	name, secret, toSign, body, want string
}{
	{"R1 docs trigger", "7ad3773142a6692b25b8",
		"POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f",
		`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`,
		"da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"},
	{"R2 channels filtered with info", "4bf35003e819bb138249",
		"GET\n/apps/102015/channels\nauth_key=d41a439c438a100756f5&auth_timestamp=1427034994&auth_version=1.0&filter_by_prefix=presence-&info=user_count",
		"", "4d8a02edcc8a758b0162cd6da690a9a45fb8ae326a276dca1e06a0bc42796c11"},
	{"R3 channels filtered", "4bf35003e819bb138249",
		"GET\n/apps/102015/channels\nauth_key=d41a439c438a100756f5&auth_timestamp=1427036577&auth_version=1.0&filter_by_prefix=presence-",
		"", "b540383af4582af5fbb5df7be5472d54bd0838c9c2021c7743062568839e6f97"},
	{"R4 channels", "4bf35003e819bb138249",
		"GET\n/apps/102015/channels\nauth_key=d41a439c438a100756f5&auth_timestamp=1427036787&auth_version=1.0",
		"", "df89248f87f6e6d028925e0b04d60f316527a865992ace6936afa91281d8bef0"},
	{"R5 channel with comma info", "4bf35003e819bb138249",
		"GET\n/apps/102015/channels/presence-session-d41a439c438a100756f5-4bf35003e819bb138249-ROpCFmgFhXY\nauth_key=d41a439c438a100756f5&auth_timestamp=1427053326&auth_version=1.0&info=user_count,subscription_count",
		"", "f93ceb31f396aef336226efe512aaf339bd5e39c7c2c04b81cc8681dc16ee785"},
	{"R6 users", "4bf35003e819bb138249",
		"GET\n/apps/102015/channels/presence-session-d41a439c438a100756f5-4bf35003e819bb138249-nYJLy67qh52/users\nauth_key=d41a439c438a100756f5&auth_timestamp=1427053709&auth_version=1.0",
		"", "207feaf4e8efeb24e5f148011704251bf90e2059a5f97a3eb52d06178b11feca"},
	{"R7 body on GET", "tofu",
		"GET\n/event\nauth_key=f00d&auth_timestamp=1234567890&auth_version=1.0&body_md5=165d5e6d7ca8f73b3853ce45addf42fc",
		"example body", "a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b"},
	{"R8 extra params", "tofu",
		"GET\n/event\nauth_key=f00d&auth_timestamp=1234567890&auth_version=1.0&baz=123454321&foo=bar",
		"", "d8bdbd31911fb7400a14fbd36fd7de053494725b64400ae5856deafe304b34a9"},
	{"R9 empty-body md5 on GET", "secret",
		"GET\n/some/obscure/api\nauth_key=key&auth_timestamp=1000&auth_version=1.0&body_md5=d41d8cd98f00b204e9800998ecf8427e&foo=bar",
		"", "5c49f04a95eedc9028b1e0e8de7c2c7ad63504a0e3b5c145d2accaef6c14dbac"},
	{"R10 post body", "secret",
		"POST\n/some/obscure/api\nauth_key=key&auth_timestamp=1000&auth_version=1.0&body_md5=94232c5b8fc9272f6f73a1e36eb68fcf",
		`{"foo": "bar"}`, "e05fa4cafee86311746ee3981d5581a5e4e87c27bbab0aeb1059e2df5c90258b"},
	{"R11 signature gem", "secret",
		"POST\n/some/path\nauth_key=key&auth_timestamp=1234&auth_version=1.0&go=here&query=params",
		"", "3b237953a5ba6619875cbb2a2d43e8da9ef5824e8a2c689f6284ac85bc1ea0db"},
	{"R12 signature gem", "secret",
		"POST\n/some/path\nauth_key=key&auth_timestamp=1234&auth_version=1.0&query=params",
		"", "da078fcedd72941b6c873caa40d0d6b2000ebfc700cee802b128dd20f72e74e9"},
}

// splitToSign breaks a string to sign into its method, path and query.
func splitToSign(t *testing.T, s string) (method, path string, q url.Values) {
	t.Helper()
	parts := strings.SplitN(s, "\n", 3)
	if len(parts) != 3 {
		t.Fatalf("malformed vector %q", s)
	}
	q, err := url.ParseQuery(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	return parts[0], parts[1], q
}

func TestRequestVectors(t *testing.T) {
	for _, v := range requestVectors {
		t.Run(v.name, func(t *testing.T) {
			method, path, q := splitToSign(t, v.toSign)
			if got := auth.RequestString(method, path, q); got != v.toSign {
				t.Fatalf("RequestString = %q, want %q", got, v.toSign)
			}
			if got := auth.Sign(v.secret, v.toSign); got != v.want {
				t.Fatalf("signature = %s, want %s", got, v.want)
			}
			// The signed request verifies at its own timestamp.
			q.Set("auth_signature", v.want)
			ts, err := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			if err := auth.VerifyRequest(q.Get("auth_key"), v.secret, method, path, q, []byte(v.body), time.Unix(ts, 0)); err != nil {
				t.Fatalf("VerifyRequest: %v", err)
			}
			// And not with another secret.
			if err := auth.VerifyRequest(q.Get("auth_key"), v.secret+"x", method, path, q, []byte(v.body), time.Unix(ts, 0)); !errors.Is(err, auth.ErrBadSignature) {
				t.Fatalf("VerifyRequest with another secret = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestRequestString(t *testing.T) {
	tests := []struct {
		name, method, path string
		query              url.Values
		want               string
	}{
		{"keys lower-cased and sorted (R11 with Query, GO)", "POST", "/some/path",
			url.Values{"Query": {"params"}, "GO": {"here"}, "auth_key": {"key"}, "auth_timestamp": {"1234"}, "auth_version": {"1.0"}},
			"POST\n/some/path\nauth_key=key&auth_timestamp=1234&auth_version=1.0&go=here&query=params"},
		{"auth_signature left out in any case", "GET", "/x",
			url.Values{"auth_signature": {"s"}, "AUTH_SIGNATURE": {"t"}, "a": {"1"}},
			"GET\n/x\na=1"},
		{"method upper-cased", "post", "/x", url.Values{"a": {"1"}}, "POST\n/x\na=1"},
		{"values not escaped", "GET", "/x",
			url.Values{"name": {"Something else"}, "auth_key": {"foo"}, "odd": {"key;=value@&"}},
			"GET\n/x\nauth_key=foo&name=Something else&odd=key;=value@&"},
		{"repeated values joined with commas", "GET", "/x",
			url.Values{"things": {"thing1", "thing2"}}, "GET\n/x\nthings=thing1,thing2"},
		{"empty value", "GET", "/x", url.Values{"k": {""}}, "GET\n/x\nk="},
		{"no query", "GET", "/apps/1/channels", url.Values{}, "GET\n/apps/1/channels\n"},
		{"nil query", "GET", "/apps/1/channels", nil, "GET\n/apps/1/channels\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := auth.RequestString(tt.method, tt.path, tt.query); got != tt.want {
				t.Errorf("RequestString = %q, want %q", got, tt.want)
			}
		})
	}
	// R11 and its mixed-case variant sign to the same value.
	q := url.Values{"Query": {"params"}, "GO": {"here"}, "auth_key": {"key"}, "auth_timestamp": {"1234"}, "auth_version": {"1.0"}}
	if got, want := auth.Sign("secret", auth.RequestString("POST", "/some/path", q)), "3b237953a5ba6619875cbb2a2d43e8da9ef5824e8a2c689f6284ac85bc1ea0db"; got != want {
		t.Errorf("mixed-case R11 signature = %s, want %s", got, want)
	}
}

func TestBodyMD5(t *testing.T) {
	tests := []struct{ body, want string }{
		{``, "d41d8cd98f00b204e9800998ecf8427e"},
		{`{}`, "99914b932bd37a50b983c5e7c90ae93b"},
		{`Hello!`, "952d2c56d0485958336747bcdd98590d"},
		{`example body`, "165d5e6d7ca8f73b3853ce45addf42fc"},
		{`{"foo": "bar"}`, "94232c5b8fc9272f6f73a1e36eb68fcf"},
		{`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`, "ec365a775a4cd0599faeb73354201b6f"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["one"]}`, "e95168baf497b2e54b2c6cadd41a6a3f"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["one","two","three"]}`, "530dac0aa045e5f8e51c470aed0ce325"},
		{`{"name":"my_event","data":"[1,2,4]","channels":["one"]}`, "18e64b2fed38726915d79ebb4f8feb5b"},
		{`{"name":"test_event","data":"test string","channels":["test"]}`, "f358a562d00e1bfe1859132d932cd706"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["test_channel"],"socket_id":"123.567","info":"user_count,subscription_count"}`, "2e4f053f1c325dedbe21abd8f1852b53"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["test_channel"],"info":"subscription_count"}`, "d3a47b3241328a6432adf60c8e91b6fb"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["test_channel"]}`, "cf87d666b4a829a54fc44b313584b2d7"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["test_-=@,.;channel"]}`, "024f0f297e27e131c8ec2c8817d153f4"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["test_channel"],"socket_id":"123.567"}`, "0478e1ed73804ae1be97cfa6554cf039"},
		{`{"batch":[{"channel":"integration","name":"event","data":"test"},{"channel":"integration2","name":"event2","data":"test2"}]}`, "fd5ab5fd40237f27555c4d2564470fdd"},
		{`{"batch":[{"channel":"integration","name":"event","data":"{\"hello\":\"world\"}"},{"channel":"integration2","name":"event2","data":"{\"hello2\":\"another world\"}"}]}`, "ade2e9d64d936215c2b2d6a6f4606ef9"},
	}
	for _, tt := range tests {
		if got := auth.BodyMD5([]byte(tt.body)); got != tt.want {
			t.Errorf("BodyMD5(%s) = %s, want %s", tt.body, got, tt.want)
		}
	}
	if got := auth.BodyMD5(nil); got != "d41d8cd98f00b204e9800998ecf8427e" {
		t.Errorf("BodyMD5(nil) = %s", got)
	}
}

func TestSignRequest(t *testing.T) {
	const key, secret = "278d425bdf160c739803", "7ad3773142a6692b25b8"
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	now := time.Unix(1353088179, 0)

	// The docs' worked example (R1) comes out exactly.
	q := auth.SignRequest(key, secret, "POST", "/apps/3/events", nil, body, now)
	want := url.Values{
		"auth_key":       {key},
		"auth_timestamp": {"1353088179"},
		"auth_version":   {"1.0"},
		"body_md5":       {"ec365a775a4cd0599faeb73354201b6f"},
		"auth_signature": {"da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"},
	}
	if got := q.Encode(); got != want.Encode() {
		t.Fatalf("SignRequest = %s, want %s", got, want.Encode())
	}

	// Without a body there is no body_md5; extra params are signed and the
	// caller's values are not modified.
	in := url.Values{"filter_by_prefix": {"presence-"}, "info": {"user_count"}}
	q = auth.SignRequest("d41a439c438a100756f5", "4bf35003e819bb138249", "GET", "/apps/102015/channels", in, nil, time.Unix(1427034994, 0))
	if got, want := q.Get("auth_signature"), "4d8a02edcc8a758b0162cd6da690a9a45fb8ae326a276dca1e06a0bc42796c11"; got != want {
		t.Errorf("R2 signature = %s, want %s", got, want)
	}
	if _, ok := q["body_md5"]; ok {
		t.Error("body_md5 set for an empty body")
	}
	if len(in) != 2 || in.Get("auth_key") != "" {
		t.Errorf("SignRequest modified its input: %v", in)
	}
	q.Set("info", "tampered")
	if in.Get("info") != "user_count" {
		t.Error("SignRequest's result shares value slices with its input")
	}
}

func TestVerifyRequest(t *testing.T) {
	const key, secret = "key", "secret"
	const method, path = "POST", "/apps/1/events"
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	now := time.Unix(1_700_000_000, 0)
	signed := func(at time.Time, body []byte) url.Values {
		return auth.SignRequest(key, secret, method, path, url.Values{"info": {"user_count"}}, body, at)
	}
	without := func(p string) url.Values {
		q := signed(now, body)
		q.Del(p)
		return q
	}
	with := func(p, v string) url.Values {
		q := signed(now, body)
		q.Set(p, v)
		return q
	}
	resigned := func(p, v string) url.Values {
		// Changes a parameter and signs again, so only that parameter is wrong.
		q := signed(now, body)
		q.Set(p, v)
		q.Set("auth_signature", auth.Sign(secret, auth.RequestString(method, path, q)))
		return q
	}

	tests := []struct {
		name      string
		method    string
		query     url.Values
		body      []byte
		now       time.Time
		want      error
		wantInMsg string
	}{
		{name: "good", query: signed(now, body), body: body, now: now},
		{name: "missing auth_key", query: without("auth_key"), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_key"},
		{name: "missing auth_timestamp", query: without("auth_timestamp"), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_timestamp"},
		{name: "missing auth_version", query: without("auth_version"), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_version"},
		{name: "missing auth_signature", query: without("auth_signature"), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_signature"},
		{name: "empty auth_signature", query: with("auth_signature", ""), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_signature"},
		{name: "no query", query: url.Values{}, body: body, now: now, want: auth.ErrMissingParam},
		{name: "unknown key", query: resigned("auth_key", "other"), body: body, now: now, want: auth.ErrUnknownKey, wantInMsg: "other"},
		{name: "version 2.0", query: resigned("auth_version", "2.0"), body: body, now: now, want: auth.ErrVersion, wantInMsg: "2.0"},
		{name: "version 1", query: resigned("auth_version", "1"), body: body, now: now, want: auth.ErrVersion},
		{name: "timestamp not a number", query: resigned("auth_timestamp", "yesterday"), body: body, now: now, want: auth.ErrMissingParam, wantInMsg: "auth_timestamp"},
		{name: "timestamp 599s old", query: signed(now.Add(-599*time.Second), body), body: body, now: now},
		{name: "timestamp 599s ahead", query: signed(now.Add(599*time.Second), body), body: body, now: now},
		{name: "timestamp 600s old", query: signed(now.Add(-600*time.Second), body), body: body, now: now, want: auth.ErrTimestampExpired},
		{name: "timestamp 600s ahead", query: signed(now.Add(600*time.Second), body), body: body, now: now, want: auth.ErrTimestampExpired},
		{name: "timestamp a day old", query: signed(now.Add(-24*time.Hour), body), body: body, now: now, want: auth.ErrTimestampExpired},
		{name: "body_md5 missing with a body", query: signed(now, nil), body: body, now: now, want: auth.ErrBodyMD5},
		{name: "body_md5 of another body", query: signed(now, []byte(`{}`)), body: body, now: now, want: auth.ErrBodyMD5},
		{name: "body changed after signing", query: signed(now, body), body: append(append([]byte(nil), body...), ' '), now: now, want: auth.ErrBodyMD5},
		{name: "body_md5 of empty body on GET tolerated", method: "GET",
			query: func() url.Values {
				q := url.Values{"body_md5": {"d41d8cd98f00b204e9800998ecf8427e"}}
				return auth.SignRequest(key, secret, "GET", path, q, nil, now)
			}(), now: now},
		{name: "body_md5 altered", query: func() url.Values {
			q := signed(now, body)
			q.Set("body_md5", auth.BodyMD5(body)+"0")
			return q
		}(), body: body, now: now, want: auth.ErrBodyMD5},
		{name: "bad signature", query: with("auth_signature", "asdf"), body: body, now: now, want: auth.ErrBadSignature},
		{name: "param added after signing", query: with("info", "subscription_count"), body: body, now: now, want: auth.ErrBadSignature},
		{name: "signature for another method", method: "PUT", query: signed(now, body), body: body, now: now, want: auth.ErrBadSignature},
		{name: "signature for GET reused on POST", method: "POST",
			query: auth.SignRequest(key, secret, "GET", path, nil, nil, now), now: now, want: auth.ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.method
			if m == "" {
				m = method
			}
			err := auth.VerifyRequest(key, secret, m, path, tt.query, tt.body, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifyRequest: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifyRequest = %v, want %v", err, tt.want)
			}
			if tt.wantInMsg != "" && !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantInMsg)
			}
			// The error may say what was signed, never what the signature
			// should have been.
			if expected := auth.Sign(secret, auth.RequestString(m, path, tt.query)); strings.Contains(err.Error(), expected) {
				t.Errorf("error %q reveals the expected signature", err)
			}
		})
	}
}

// TestVerifyRequestSignatureGem replays the signature gem's behavioural
// vectors (server clock 1234 ± n).
func TestVerifyRequestSignatureGem(t *testing.T) {
	q := url.Values{
		"query": {"params"}, "go": {"here"}, "auth_key": {"key"}, "auth_timestamp": {"1234"}, "auth_version": {"1.0"},
		"auth_signature": {"3b237953a5ba6619875cbb2a2d43e8da9ef5824e8a2c689f6284ac85bc1ea0db"},
	}
	verify := func(q url.Values, now int64) error {
		return auth.VerifyRequest("key", "secret", "POST", "/some/path", q, nil, time.Unix(now, 0))
	}
	for _, now := range []int64{1234, 1234 + 599, 1234 - 599} {
		if err := verify(q, now); err != nil {
			t.Errorf("now=%d: %v", now, err)
		}
	}
	err := verify(q, 1234+600)
	if !errors.Is(err, auth.ErrTimestampExpired) {
		t.Fatalf("now=1834: %v, want ErrTimestampExpired", err)
	}
	if want := "given timestamp (1970-01-01T00:20:34Z) not within 600s of server time (1970-01-01T00:30:34Z)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	err = verify(q, 1234-600)
	if !errors.Is(err, auth.ErrTimestampExpired) || !strings.Contains(err.Error(), "(1970-01-01T00:10:34Z)") {
		t.Errorf("now=634: %v, want ErrTimestampExpired naming 00:10:34", err)
	}

	bad := url.Values{}
	for k, v := range q {
		bad[k] = v
	}
	bad.Set("auth_signature", "asdf")
	err = verify(bad, 1234)
	if !errors.Is(err, auth.ErrBadSignature) {
		t.Fatalf("wrong signature: %v", err)
	}
	want := `HmacSHA256Hex("POST\n/some/path\nauth_key=key&auth_timestamp=1234&auth_version=1.0&go=here&query=params", your_secret_key)`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}

	noTS := url.Values{}
	for k, v := range q {
		noTS[k] = v
	}
	noTS.Del("auth_timestamp")
	if err := verify(noTS, 1234); !errors.Is(err, auth.ErrMissingParam) || !strings.Contains(err.Error(), "auth_timestamp") {
		t.Errorf("missing timestamp: %v", err)
	}
}

// TestWebhookSignatureVectors uses §8.4.
func TestWebhookSignatureVectors(t *testing.T) {
	tests := []struct{ secret, body, want string }{
		{"tofu", `{"time_ms":1403175510755,"events":[{"channel":"test_channel","name":"channel_vacated"}]}`,
			"c17257e92037cd7de407ebc1ed174ceb7b2e518db127f44411b9ffc4f5b28cc5"},
		{"secret", `{"hello":"world"}`, "2677ad3e7c090b2fa2c0fb13020d66d5420879b8316eb356a2d60fb9073bc778"},
		{"thisisasecret", `{"hello":"world"}`, "40e0ad3b9aa49529322879e84de1aaaf18bde1efe839ca263d540cc865510d25"},
		{"thisisasecret", `{"time_ms":1530710011901,"events":[{"name":"client_event","channel":"private-my-channel","event":"client-event","data":"Unencrypted","socket_id":"240621.35780774"}]}`,
			"a19cab2af3ca1029257570395e78d5d675e9e700ca676d18a375a7083178df1c"},
	}
	for _, tt := range tests {
		if got := auth.WebhookSignature(tt.secret, []byte(tt.body)); got != tt.want {
			t.Errorf("WebhookSignature(%q, %s) = %s, want %s", tt.secret, tt.body, got, tt.want)
		}
		// A changed body or secret changes the signature.
		if got := auth.WebhookSignature(tt.secret, []byte(tt.body+" ")); got == tt.want {
			t.Errorf("signature unchanged by a changed body")
		}
		if got := auth.WebhookSignature(tt.secret+"x", []byte(tt.body)); got == tt.want {
			t.Errorf("signature unchanged by another secret")
		}
	}
}

// TestVerifyRequestDuplicateParams: an auth parameter given twice is refused
// whichever copy is the valid one, in any mix of letter cases, while other
// parameters may repeat (their values are signed joined with commas).
func TestVerifyRequestDuplicateParams(t *testing.T) {
	const key, secret, method, path = "key", "secret", "POST", "/apps/1/events"
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	now := time.Unix(1_700_000_000, 0)
	for _, p := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"} {
		for _, tc := range []struct {
			name string
			add  func(q url.Values, valid string)
		}{
			{"valid first", func(q url.Values, valid string) { q[p] = []string{valid, "bogus"} }},
			{"valid last", func(q url.Values, valid string) { q[p] = []string{"bogus", valid} }},
			{"twice the valid value", func(q url.Values, valid string) { q[p] = []string{valid, valid} }},
			{"empty second", func(q url.Values, valid string) { q[p] = []string{valid, ""} }},
			{"upper-case copy", func(q url.Values, valid string) { q[strings.ToUpper(p)] = []string{valid} }},
		} {
			t.Run(p+"/"+tc.name, func(t *testing.T) {
				q := auth.SignRequest(key, secret, method, path, nil, body, now)
				tc.add(q, q.Get(p))
				for _, err := range []error{
					auth.VerifyRequest(key, secret, method, path, q, body, now),
					auth.VerifyRequestQuery(key, secret, method, path, q, now),
				} {
					if !errors.Is(err, auth.ErrDuplicateParam) || !strings.Contains(err.Error(), p+" is given more than once") {
						t.Fatalf("%v, want ErrDuplicateParam naming %s", err, p)
					}
				}
			})
		}
	}
	// Repeated non-auth parameters are signed as Pusher signs them.
	q := auth.SignRequest(key, secret, "GET", "/apps/1/channels", url.Values{"info": {"a", "b"}}, nil, now)
	if err := auth.VerifyRequest(key, secret, "GET", "/apps/1/channels", q, nil, now); err != nil {
		t.Fatalf("repeated info: %v", err)
	}
}

// TestVerifyRequestKeysInTwoSpellings: a non-auth key given in two letter
// cases is signed lower-cased, so which value the signature covered would
// be up to map order while the API reads one spelling; such a request is
// refused every time, the general way and the one-pass way alike. One
// upper-case key on its own is signed as Pusher's SDKs sign it.
func TestVerifyRequestKeysInTwoSpellings(t *testing.T) {
	const key, secret, method, path = "key", "secret", "GET", "/apps/1/channels"
	now := time.Unix(1_700_000_000, 0)
	v := auth.NewRequestVerifier(key, secret)
	for _, tc := range []struct {
		name  string
		query url.Values
		dup   string
	}{
		{"Info and info", url.Values{"Info": {"user_count"}, "info": {"subscription_count"}}, "info"},
		{"INFO and Info", url.Values{"INFO": {"a"}, "Info": {"b"}}, "info"},
		{"two collisions", url.Values{"B": {"1"}, "b": {"2"}, "A": {"1"}, "a": {"2"}}, "a"},
		{"one upper-case key", url.Values{"Filter_By_Prefix": {"presence-"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := auth.SignRequest(key, secret, method, path, tc.query, nil, now)
			// Many times: map order must not decide.
			for range 50 {
				_, fast := v.VerifyQuery(method, path, "", q.Encode(), now)
				for _, err := range []error{auth.VerifyRequest(key, secret, method, path, q, nil, now), fast} {
					if tc.dup == "" {
						if err != nil {
							t.Fatal(err)
						}
						continue
					}
					if !errors.Is(err, auth.ErrDuplicateParam) || !strings.Contains(err.Error(), tc.dup+" is given in two spellings") {
						t.Fatalf("%v, want ErrDuplicateParam naming %s", err, tc.dup)
					}
				}
			}
		})
	}
}

// TestVerifyRequestRepeatsNamedInOrder: of several repeated auth
// parameters the refusal always names the same one, whatever order Go's
// map iteration visits the query in.
func TestVerifyRequestRepeatsNamedInOrder(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	q := auth.SignRequest("key", "secret", "POST", "/apps/1/events", nil, nil, now)
	q["auth_signature"] = append(q["auth_signature"], "00")
	q["body_md5"] = []string{"a", "b"}
	q["AUTH_KEY"] = []string{"key"}
	for range 100 {
		err := auth.VerifyRequestQuery("key", "secret", "POST", "/apps/1/events", q, now)
		if err == nil || err.Error() != "duplicate parameter: auth_key is given more than once" {
			t.Fatalf("%v, want the refusal to name auth_key", err)
		}
	}
}

// TestVerifyRequestQueryThenBody: the signature is checked without the
// body, and the body afterwards against the body_md5 the signature covers.
func TestVerifyRequestQueryThenBody(t *testing.T) {
	const key, secret, method, path = "key", "secret", "POST", "/apps/1/events"
	body := []byte(`{"name":"e","channel":"c","data":"d"}`)
	now := time.Unix(1_700_000_000, 0)
	q := auth.SignRequest(key, secret, method, path, nil, body, now)
	if err := auth.VerifyRequestQuery(key, secret, method, path, q, now); err != nil {
		t.Fatalf("VerifyRequestQuery: %v", err)
	}
	if err := auth.VerifyBodyMD5(q, body); err != nil {
		t.Fatalf("VerifyBodyMD5: %v", err)
	}
	if err := auth.VerifyBodyMD5(q, append(body[:len(body):len(body)], ' ')); !errors.Is(err, auth.ErrBodyMD5) {
		t.Fatalf("VerifyBodyMD5 of another body: %v", err)
	}
	if err := auth.VerifyBodyMD5(q, nil); err != nil {
		t.Fatalf("VerifyBodyMD5 of no body: %v", err)
	}
	unsigned := auth.SignRequest(key, secret, method, path, nil, nil, now)
	if err := auth.VerifyBodyMD5(unsigned, body); !errors.Is(err, auth.ErrBodyMD5) {
		t.Fatalf("VerifyBodyMD5 without body_md5: %v", err)
	}

	// A body_md5 changed after signing breaks the signature, which is what
	// a server that has not read the body yet sees.
	tampered := auth.SignRequest(key, secret, method, path, nil, body, now)
	tampered.Set("body_md5", auth.BodyMD5([]byte("other")))
	if err := auth.VerifyRequestQuery(key, secret, method, path, tampered, now); !errors.Is(err, auth.ErrBadSignature) {
		t.Fatalf("tampered body_md5: %v, want ErrBadSignature", err)
	}
	for _, tc := range []struct {
		name  string
		query url.Values
		want  error
	}{
		{"missing", url.Values{}, auth.ErrMissingParam},
		{"stale", auth.SignRequest(key, secret, method, path, nil, body, now.Add(-time.Hour)), auth.ErrTimestampExpired},
		{"other key", auth.SignRequest("other", secret, method, path, nil, body, now), auth.ErrUnknownKey},
		{"other secret", auth.SignRequest(key, "other", method, path, nil, body, now), auth.ErrBadSignature},
	} {
		if err := auth.VerifyRequestQuery(key, secret, method, path, tc.query, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
