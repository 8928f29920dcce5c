package scf

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/tencentyun/scf-go-lib/events"

	"github.com/regtrigger/regtrigger/internal/receiver"
)

// Request is an API Gateway trigger event. scf-go-lib's
// events.APIGatewayRequest leaves out isBase64Encoded, which API Gateway
// sets for binary bodies, so it is added here.
type Request struct {
	events.APIGatewayRequest
	IsBase64Encoded bool `json:"isBase64Encoded"`
}

// Receiver answers API Gateway trigger events with the receiver's Endpoint:
// the same statuses and JSON bodies as `regtrigger serve` and the Lambda
// function. API Gateway must pass them through ("integration response"
// enabled on the API; see docs/tencent-scf.md), or it answers every
// request 200.
type Receiver struct {
	Endpoint *receiver.Endpoint
}

// Invoke answers one request. It never fails the invocation: API Gateway
// would turn a function error into a bare 502.
func (r *Receiver) Invoke(ctx context.Context, req Request) (events.APIGatewayResponse, error) {
	in, bad := Inbound(ctx, req)
	resp := bad
	if bad.Status == 0 {
		resp = r.Endpoint.Handle(ctx, in)
	}
	return Response(resp), nil
}

// Inbound translates an API Gateway event; a non-zero Response means the
// event itself is unusable (a body that is not valid base64).
func Inbound(ctx context.Context, req Request) (receiver.Inbound, receiver.Response) {
	header := make(http.Header, len(req.Headers))
	for k, v := range req.Headers {
		header.Set(k, v)
	}
	query := url.Values{}
	for k, vs := range req.QueryString {
		if len(vs) == 0 {
			query[k] = []string{""} // ?flag without a value
			continue
		}
		query[k] = vs
	}
	var body []byte
	tooLarge := len(req.Body) > base64.StdEncoding.EncodedLen(receiver.MaxBody)
	switch {
	case tooLarge:
		// Not decoded: the Endpoint answers 413.
	case req.IsBase64Encoded:
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return receiver.Inbound{}, receiver.ErrorResponse(http.StatusBadRequest, "bad base64 body", err.Error())
		}
		body = b
	default:
		body = []byte(req.Body)
	}
	id := RequestID(ctx)
	if id == "" {
		id = req.Context.RequestID
	}
	method := req.Method
	if method == "" {
		method = req.Context.Method
	}
	return receiver.Inbound{
		ID: id, Method: strings.ToUpper(method), Path: req.Path, Header: header, Query: query,
		Body: body, TooLarge: tooLarge || len(body) > receiver.MaxBody,
		// Behind API Gateway no client is on the function's machine.
		Loopback: false,
		// API Gateway's requestContext, or the function URL's header.
		Remote: firstNonEmpty(req.Context.SourceIP, header.Get("X-Scf-Remote-Addr")),
	}, receiver.Response{}
}

// Response is the API Gateway form of a receiver answer. API Gateway takes
// one value per header, so repeated headers are joined with ", ".
func Response(resp receiver.Response) events.APIGatewayResponse {
	out := events.APIGatewayResponse{
		StatusCode: resp.Status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(resp.Body) + "\n",
	}
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			out.Headers[k] = strings.Join(vs, ", ")
		}
	}
	return out
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
