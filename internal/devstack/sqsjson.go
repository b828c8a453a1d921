package devstack

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SQSJSONAdapter lets the current AWS SDK talk to goaws v0.4.5: the SDK sends SQS requests in the
// AWS JSON 1.0 protocol (X-Amz-Target: AmazonSQS.<Action>), goaws understands only the older query
// protocol (form Action=<Action>, XML replies). It translates the operations the notification
// consumer and the sandbox use; any other answers 400 naming the operation, so a test never
// passes on a silently dropped call.
type SQSJSONAdapter struct {
	// GoAWS is goaws's base URL, e.g. http://127.0.0.1:4100.
	GoAWS string
}

// ServeSQSAdapter serves an SQSJSONAdapter for the goaws at goawsURL on addr (host:port; port 0
// picks a free one) and returns the endpoint to give the AWS SDK (AWS_ENDPOINT_URL_SQS) and the
// function that stops it.
func ServeSQSAdapter(goawsURL, addr string) (endpoint string, stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("devstack: SQS adapter on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: &SQSJSONAdapter{GoAWS: goawsURL}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { _ = srv.Close() }, nil
}

func (a *SQSJSONAdapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	if !ok {
		jsonError(w, http.StatusBadRequest, "InvalidAction", "devstack: SQS adapter: no X-Amz-Target header")
		return
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		jsonError(w, http.StatusBadRequest, "InvalidParameterValue", "devstack: SQS adapter: body is not JSON")
		return
	}
	reply, known := sqsReplies[op]
	if !known {
		jsonError(w, http.StatusBadRequest, "InvalidAction", "devstack: SQS adapter does not translate "+op)
		return
	}
	form := url.Values{"Action": {op}, "Version": {"2012-11-05"}}
	for k, v := range in {
		switch v := v.(type) {
		case string:
			form.Set(k, v)
		case float64:
			form.Set(k, strconv.FormatFloat(v, 'f', -1, 64))
		case map[string]any: // Attributes
			keys := make([]string, 0, len(v))
			for name := range v {
				keys = append(keys, name)
			}
			sort.Strings(keys)
			for i, name := range keys {
				form.Set(fmt.Sprintf("Attribute.%d.Name", i+1), name)
				form.Set(fmt.Sprintf("Attribute.%d.Value", i+1), fmt.Sprint(v[name]))
			}
		case []any: // AttributeNames
			for i, name := range v {
				form.Set(fmt.Sprintf("AttributeName.%d", i+1), fmt.Sprint(name))
			}
		}
	}
	resp, err := http.PostForm(a.GoAWS+"/", form)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "ServiceUnavailable", "devstack: SQS adapter: "+err.Error())
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Code    string `xml:"Error>Code"`
			Message string `xml:"Error>Message"`
		}
		_ = xml.Unmarshal(body, &e)
		if e.Code == "" {
			e.Code = "InternalError"
		}
		jsonError(w, resp.StatusCode, e.Code, e.Message)
		return
	}
	out, err := reply(body)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "InternalError", "devstack: SQS adapter: "+op+" reply: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	_ = json.NewEncoder(w).Encode(out)
}

func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", code+";Sender")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.sqs#" + code, "message": msg})
}

type xmlAttr struct {
	Name  string `xml:"Name"`
	Value string `xml:"Value"`
}

func attrMap(as []xmlAttr) map[string]string {
	m := map[string]string{}
	for _, a := range as {
		m[a.Name] = a.Value
	}
	return m
}

// sqsReplies turns goaws's XML reply of each translated operation into the JSON reply.
var sqsReplies = map[string]func([]byte) (any, error){
	"CreateQueue": func(b []byte) (any, error) {
		var x struct {
			URL string `xml:"CreateQueueResult>QueueUrl"`
		}
		err := xml.Unmarshal(b, &x)
		return map[string]string{"QueueUrl": x.URL}, err
	},
	"GetQueueUrl": func(b []byte) (any, error) {
		var x struct {
			URL string `xml:"GetQueueUrlResult>QueueUrl"`
		}
		err := xml.Unmarshal(b, &x)
		return map[string]string{"QueueUrl": x.URL}, err
	},
	"GetQueueAttributes": func(b []byte) (any, error) {
		var x struct {
			Attrs []xmlAttr `xml:"GetQueueAttributesResult>Attribute"`
		}
		err := xml.Unmarshal(b, &x)
		return map[string]any{"Attributes": attrMap(x.Attrs)}, err
	},
	"SendMessage": func(b []byte) (any, error) {
		var x struct {
			ID  string `xml:"SendMessageResult>MessageId"`
			MD5 string `xml:"SendMessageResult>MD5OfMessageBody"`
		}
		err := xml.Unmarshal(b, &x)
		return map[string]string{"MessageId": x.ID, "MD5OfMessageBody": x.MD5}, err
	},
	"ReceiveMessage": func(b []byte) (any, error) {
		var x struct {
			Messages []struct {
				ID      string    `xml:"MessageId"`
				Receipt string    `xml:"ReceiptHandle"`
				MD5     string    `xml:"MD5OfBody"`
				Body    string    `xml:"Body"`
				Attrs   []xmlAttr `xml:"Attribute"`
			} `xml:"ReceiveMessageResult>Message"`
		}
		if err := xml.Unmarshal(bytes.TrimSpace(b), &x); err != nil {
			return nil, err
		}
		msgs := make([]map[string]any, 0, len(x.Messages))
		for _, m := range x.Messages {
			msgs = append(msgs, map[string]any{"MessageId": m.ID, "ReceiptHandle": m.Receipt, "MD5OfBody": m.MD5,
				"Body": m.Body, "Attributes": attrMap(m.Attrs)})
		}
		return map[string]any{"Messages": msgs}, nil
	},
	"DeleteMessage":           func([]byte) (any, error) { return map[string]any{}, nil },
	"ChangeMessageVisibility": func([]byte) (any, error) { return map[string]any{}, nil },
}
