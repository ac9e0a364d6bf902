package signature_test

import (
	"net/url"
	"testing"

	"github.com/heraldhq/herald/bench/internal/signature"
)

// The vectors below are the published ones of the Pusher docs and the
// official server SDKs' tests (channel authorization A1–A31, REST signing
// R1–R12): they hold this copy of the signing code to Pusher's, not to the
// server's.

func TestChannelTokenVectors(t *testing.T) {
	tests := []struct {
		name, key, secret, socketID, channel, data, want string
	}{
		{"A1 private", "278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "private-foobar", "",
			"278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"},
		{"A3 presence", "278d425bdf160c739803", "7ad3773142a6692b25b8", "1234.1234", "presence-foobar",
			`{"user_id":"10","user_info":{"name":"Mr. Pusher"}}`,
			"278d425bdf160c739803:48dac51d2d7569e1e9c0f48c227d4b26f238fa68e5c0bb04222c966909c4f7c4"},
		{"A5", "aaaa", "tofu", "123.456", "test", "",
			"aaaa:efa6cf7644a0b35cba36aa0f776f3cbf7bb60e95ea2696bde1dbe8403b61bd7c"},
		{"A11 public with data", "aaaa", "tofu", "123.456", "test", `{"foo":"bar"}`,
			"aaaa:f41faf9ead2ea76772cc6b1168363057459f02499ae4d92e88229dc7f4efa2d4"},
		{"A12 utf-8 channel data", "aaaa", "tofu", "1.1", "test", `"ą§¶™€łü€ß£"`,
			"aaaa:2a229263e89d9c50524fd80c2e88be2843379f6931e28995e2cc214282c9db0c"},
		// channel_data is signed verbatim, its space included.
		{"A24 data with space", "k", "thisisasecret", "45055.28877557", "-azAZ9_=@,.;", `{"user_id": "123"}`,
			"k:3b3f1dcc4d7d2f95dd10ed05562397b3287b102d4cccfacbf30eed2f1ffa3d69"},
		{"A27 presence", "foo", "bar", "345.43245", "presence-channel", `{"user_id":"fred","user_info":{"key":"value"}}`,
			"foo:e80ba6439492c2113022c39297a87a948de14061cc67b5788e045645a68b8ccd"},
		{"A30", "12345678900000001", "12345678900000001", "1.1", "test_channel", "",
			"12345678900000001:02259dff9a2a3f71ea8ab29ac0c0c0ef7996c8f3fd3702be5533f30da7d7fed4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := signature.ChannelToken(tt.key, tt.secret, tt.socketID, tt.channel, tt.data); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestHMACVector(t *testing.T) {
	// A31: the Go SDK's generic HMAC vector.
	if got := signature.HMAC("supersecret", "Hello!"); got != "64e3f44166575febbc5de88c9476325ea7d4b3684752158d9fdb31fce34b980d" {
		t.Errorf("HMAC = %s", got)
	}
}

func TestBodyMD5Vectors(t *testing.T) {
	tests := []struct{ body, want string }{
		{"", "d41d8cd98f00b204e9800998ecf8427e"},
		{"Hello!", "952d2c56d0485958336747bcdd98590d"},
		{"example body", "165d5e6d7ca8f73b3853ce45addf42fc"},
		{`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`, "ec365a775a4cd0599faeb73354201b6f"},
		{`{"name":"my_event","data":"{\"some\":\"data \"}","channels":["one"]}`, "e95168baf497b2e54b2c6cadd41a6a3f"},
	}
	for _, tt := range tests {
		if got := signature.BodyMD5([]byte(tt.body)); got != tt.want {
			t.Errorf("BodyMD5(%q) = %s, want %s", tt.body, got, tt.want)
		}
	}
}

func TestRequestStringVectors(t *testing.T) {
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name, secret, method, path string
		query                      url.Values
		wantString, wantSig        string
	}{
		{"R2 list channels", "4bf35003e819bb138249", "GET", "/apps/102015/channels",
			q("auth_key", "d41a439c438a100756f5", "auth_timestamp", "1427034994", "auth_version", "1.0",
				"filter_by_prefix", "presence-", "info", "user_count"),
			"GET\n/apps/102015/channels\nauth_key=d41a439c438a100756f5&auth_timestamp=1427034994&auth_version=1.0&filter_by_prefix=presence-&info=user_count",
			"4d8a02edcc8a758b0162cd6da690a9a45fb8ae326a276dca1e06a0bc42796c11"},
		{"R5 raw comma", "4bf35003e819bb138249", "GET",
			"/apps/102015/channels/presence-session-d41a439c438a100756f5-4bf35003e819bb138249-ROpCFmgFhXY",
			q("auth_key", "d41a439c438a100756f5", "auth_timestamp", "1427053326", "auth_version", "1.0",
				"info", "user_count,subscription_count"),
			"GET\n/apps/102015/channels/presence-session-d41a439c438a100756f5-4bf35003e819bb138249-ROpCFmgFhXY\nauth_key=d41a439c438a100756f5&auth_timestamp=1427053326&auth_version=1.0&info=user_count,subscription_count",
			"f93ceb31f396aef336226efe512aaf339bd5e39c7c2c04b81cc8681dc16ee785"},
		{"R8 extra params", "tofu", "GET", "/event",
			q("foo", "bar", "baz", "123454321", "auth_key", "f00d", "auth_timestamp", "1234567890", "auth_version", "1.0"),
			"GET\n/event\nauth_key=f00d&auth_timestamp=1234567890&auth_version=1.0&baz=123454321&foo=bar",
			"d8bdbd31911fb7400a14fbd36fd7de053494725b64400ae5856deafe304b34a9"},
		// Keys are lower-cased before sorting; an auth_signature already
		// present is not signed.
		{"R11 mixed-case keys", "secret", "post", "/some/path",
			q("Query", "params", "GO", "here", "auth_key", "key", "auth_timestamp", "1234", "auth_version", "1.0",
				"auth_signature", "asdf"),
			"POST\n/some/path\nauth_key=key&auth_timestamp=1234&auth_version=1.0&go=here&query=params",
			"3b237953a5ba6619875cbb2a2d43e8da9ef5824e8a2c689f6284ac85bc1ea0db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := signature.RequestString(tt.method, tt.path, tt.query)
			if s != tt.wantString {
				t.Errorf("string to sign\n%q\nwant\n%q", s, tt.wantString)
			}
			if got := signature.HMAC(tt.secret, s); got != tt.wantSig {
				t.Errorf("signature %s, want %s", got, tt.wantSig)
			}
		})
	}
}

func TestRequestVectors(t *testing.T) {
	tests := []struct {
		name, key, secret, method, path string
		query                           url.Values
		body                            string
		ts                              int64
		want                            string // the encoded query string
	}{
		// R1: the REST API docs' worked example and the Go SDK's
		// TestTriggerRequestUrl, whose expected URL this is.
		{"R1 trigger", "278d425bdf160c739803", "7ad3773142a6692b25b8", "POST", "/apps/3/events", nil,
			`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`, 1353088179,
			"auth_key=278d425bdf160c739803&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"},
		// R4: a bodiless GET carries no body_md5.
		{"R4 no params", "d41a439c438a100756f5", "4bf35003e819bb138249", "GET", "/apps/102015/channels", nil, "", 1427036787,
			"auth_key=d41a439c438a100756f5&auth_signature=df89248f87f6e6d028925e0b04d60f316527a865992ace6936afa91281d8bef0&auth_timestamp=1427036787&auth_version=1.0"},
		{"R3 one param", "d41a439c438a100756f5", "4bf35003e819bb138249", "GET", "/apps/102015/channels",
			url.Values{"filter_by_prefix": {"presence-"}}, "", 1427036577,
			"auth_key=d41a439c438a100756f5&auth_signature=b540383af4582af5fbb5df7be5472d54bd0838c9c2021c7743062568839e6f97&auth_timestamp=1427036577&auth_version=1.0&filter_by_prefix=presence-"},
		{"R7 body", "f00d", "tofu", "GET", "/event", nil, "example body", 1234567890,
			"auth_key=f00d&auth_signature=a650196dc427ebe837226f8565ca9232198c6d1b9455eaa72374a9dc0b620e7b&auth_timestamp=1234567890&auth_version=1.0&body_md5=165d5e6d7ca8f73b3853ce45addf42fc"},
		{"R10 POST body", "key", "secret", "POST", "/some/obscure/api", nil, `{"foo": "bar"}`, 1000,
			"auth_key=key&auth_signature=e05fa4cafee86311746ee3981d5581a5e4e87c27bbab0aeb1059e2df5c90258b&auth_timestamp=1000&auth_version=1.0&body_md5=94232c5b8fc9272f6f73a1e36eb68fcf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before string
			if tt.query != nil {
				before = tt.query.Encode()
			}
			got := signature.Request(tt.key, tt.secret, tt.method, tt.path, tt.query, []byte(tt.body), tt.ts)
			if got.Encode() != tt.want {
				t.Errorf("query\n%s\nwant\n%s", got.Encode(), tt.want)
			}
			if tt.query != nil && tt.query.Encode() != before {
				t.Errorf("the caller's query was modified: %s", tt.query.Encode())
			}
		})
	}
}
