package paygate

import "bytes"

// Stripe's PaymentIntent (and SetupIntent) objects carry a client_secret:
// whoever holds it can confirm the payment from a browser. paygate never
// stores one (README, "What is logged"), and webhook events are stored: so
// the value of every "client_secret" field of an event is replaced before
// it is, wherever in the event it sits. The signature was checked on the
// bytes as sent.

// redactedSecret replaces a client secret in a stored event.
const redactedSecret = `"[redacted]"`

// withoutClientSecrets returns payload with the string value of every
// "client_secret" field replaced by redactedSecret: a new slice if there
// was one, payload itself (unchanged) if not. payload is JSON; text that
// is not is returned as it is.
func withoutClientSecrets(payload []byte) []byte {
	const key = `"client_secret"`
	if !bytes.Contains(payload, []byte(key)) {
		return payload
	}
	var out []byte
	last := 0
	for i := 0; i < len(payload); i++ {
		if payload[i] != '"' {
			continue
		}
		end := jsonStringEnd(payload, i)
		if end < 0 {
			break
		}
		if end-i == len(key) && bytes.Equal(payload[i:end], []byte(key)) {
			if v := skipJSONSpace(payload, end); v < len(payload) && payload[v] == ':' {
				if v = skipJSONSpace(payload, v+1); v < len(payload) && payload[v] == '"' {
					if vend := jsonStringEnd(payload, v); vend > 0 {
						out = append(append(out, payload[last:v]...), redactedSecret...)
						last = vend
						end = vend
					}
				}
			}
		}
		i = end - 1
	}
	if out == nil {
		return payload
	}
	return append(out, payload[last:]...)
}

// jsonStringEnd returns the index just past the JSON string that starts at
// b[i] (a quote), or -1 if it does not end.
func jsonStringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
