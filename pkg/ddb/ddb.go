// Package ddb is the shared DynamoDB plumbing: the client, the table definitions and the
// translation of transport and throttling failures. Item layouts belong to the domain adapters.
package ddb

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"

	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Settings selects the DynamoDB endpoint and tables. Credentials always come from the default
// AWS chain, so IRSA on EKS works without any setting here.
type Settings struct {
	Region      string `envconfig:"DYNAMODB_REGION" desc:"AWS region of the tables; empty uses the default AWS chain (AWS_REGION)"`
	Endpoint    string `envconfig:"DYNAMODB_ENDPOINT" desc:"DynamoDB endpoint URL override, for DynamoDB Local; empty uses AWS"`
	TablePrefix string `envconfig:"TABLE_PREFIX" desc:"prefix prepended to every table name"`
}

// NewClient builds a DynamoDB client from the default AWS configuration chain. When ctx carries
// telemetry (service.Run puts it there), every call is a client span under the caller's span
// and a measurement on trigger.dynamodb.call.duration.
func NewClient(ctx context.Context, cfg Settings, opts ...func(*config.LoadOptions) error) (*dynamodb.Client, error) {
	// The SDK's default keeps 10 idle connections per host; a busy service would then open and
	// close connections under load, so keep enough for a few hundred requests in flight.
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 512
	})
	opts = append([]func(*config.LoadOptions) error{config.WithHTTPClient(httpClient)}, opts...)
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if telemetry.Enabled(ctx) {
		tel := telemetry.FromContext(ctx)
		otelaws.AppendMiddlewares(&awsCfg.APIOptions, tracingOptions(tel)...)
		awsCfg.APIOptions = append(awsCfg.APIOptions, metricsMiddleware(tel))
	}
	return dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// DynamoDB Local answers some writes with an X-Amz-Crc32 header of 0; validating it
			// only logs warnings and drops the connection.
			o.DisableValidateResponseChecksum = true
		}
	}), nil
}

func tracingOptions(tel *telemetry.Telemetry) []otelaws.Option {
	return []otelaws.Option{otelaws.WithTracerProvider(tel.TracerProvider), otelaws.WithTextMapPropagator(tel.Propagator)}
}

// WithTelemetry makes every call of a client built with this option a client span and a
// measurement, as NewClient does, for clients it did not build (tests derive theirs from a
// shared one).
func WithTelemetry(tel *telemetry.Telemetry) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		otelaws.AppendMiddlewares(&o.APIOptions, tracingOptions(tel)...)
		o.APIOptions = append(o.APIOptions, metricsMiddleware(tel))
	}
}

// throttled are the error codes DynamoDB uses when it cannot serve a request right now.
var throttled = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"LimitExceededException":                 true,
}

// Translate maps transport failures and throttling to storage.ErrUnavailable and leaves every
// other error as it is. Adapters call it on each error they do not handle themselves.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var api smithy.APIError
	if errors.As(err, &api) && throttled[api.ErrorCode()] {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	var send *smithyhttp.RequestSendError
	if errors.As(err, &send) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() >= 500 {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}

// IsConditionFailed reports whether err is a failed condition expression.
func IsConditionFailed(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ConditionalCheckFailedException"
}
