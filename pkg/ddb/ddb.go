// Package ddb is the shared DynamoDB plumbing: the client, the table definitions and the
// translation of transport and throttling failures. Item layouts belong to the domain adapters.
package ddb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"go.opentelemetry.io/contrib/instrumentation/github.com/aws/aws-sdk-go-v2/otelaws"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/trigger-api/trigger-api/pkg/storage"
	"github.com/trigger-api/trigger-api/pkg/telemetry"
)

// Settings selects the DynamoDB endpoint and tables. Credentials always come from the default
// AWS chain, so IRSA on EKS works without any setting here.
type Settings struct {
	Region      string `envconfig:"DYNAMODB_REGION" desc:"AWS region of the tables; empty uses the default AWS chain (AWS_REGION)"`
	Endpoint    string `envconfig:"DYNAMODB_ENDPOINT" desc:"DynamoDB endpoint URL override, for DynamoDB Local; empty uses AWS"`
	TablePrefix string `envconfig:"TABLE_PREFIX" desc:"prefix prepended to every table name"`
	// AttemptTimeout bounds one HTTP attempt: a stalled connection then costs one attempt, not
	// a request's whole budget, and the SDK retries on a fresh connection.
	AttemptTimeout time.Duration `envconfig:"DYNAMODB_ATTEMPT_TIMEOUT" default:"3s" desc:"longest one DynamoDB HTTP attempt may take before it is abandoned and retried"`
	// MaxAttempts bounds the SDK's tries per call (first one included).
	MaxAttempts int `envconfig:"DYNAMODB_MAX_ATTEMPTS" default:"3" desc:"tries per DynamoDB call, the first included; throttling and transport failures are retried with backoff (a PutItem whose first, direct try fails gets this many more)"`
}

// Defaults for Settings built in code rather than from the environment.
const (
	DefaultAttemptTimeout = 3 * time.Second
	DefaultMaxAttempts    = 3
)

// NewClient builds a DynamoDB client from the default AWS configuration chain. When ctx carries
// telemetry (service.Run puts it there), every call is a client span under the caller's span,
// a measurement on trigger.dynamodb.call.duration and its units on
// trigger.dynamodb.consumed_capacity.
func NewClient(ctx context.Context, cfg Settings, opts ...func(*config.LoadOptions) error) (*dynamodb.Client, error) {
	// The SDK's default keeps 10 idle connections per host; a busy service would then open and
	// close connections under load, so keep enough for a few hundred requests in flight.
	attempt := cmp.Or(cfg.AttemptTimeout, DefaultAttemptTimeout)
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns = 512
		t.MaxIdleConnsPerHost = 512
	}).WithDialerOptions(func(d *net.Dialer) { d.Timeout = min(attempt, time.Second) })
	opts = append([]func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts)
				// The client-side retry quota turns a burst of throttling into errors that are
				// not DynamoDB's and that no one retries; attempts and budgets bound the work.
				o.RateLimiter = ratelimit.None
			})
		}),
	}, opts...)
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load aws config: %w", err)
	}
	if awsCfg.Credentials != nil {
		awsCfg.Credentials = credentialsMarker{awsCfg.Credentials}
	}
	// Before the telemetry is added: the direct PutItem's SDK path goes without it (below).
	plainAPIOptions := slices.Clone(awsCfg.APIOptions)
	direct := &directPut{}
	if telemetry.Enabled(ctx) {
		tel := telemetry.FromContext(ctx)
		direct.metrics = newCallMetrics(tel, cfg.TablePrefix)
		direct.tracer = tel.TracerProvider.Tracer(otelaws.ScopeName, trace.WithInstrumentationVersion(otelaws.Version))
		otelaws.AppendMiddlewares(&awsCfg.APIOptions, tracingOptions(tel)...)
		awsCfg.APIOptions = append(awsCfg.APIOptions, metricsMiddleware(direct.metrics), capacityMiddleware(direct.metrics))
	}
	options := func(o *dynamodb.Options) {
		// Wrapped here, after the configuration has set up its client (AWS_CA_BUNDLE needs
		// the SDK's own type).
		o.HTTPClient = oneWrite{attemptBound{o.HTTPClient, attempt}}
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
			// DynamoDB Local answers some writes with an X-Amz-Crc32 header of 0; validating it
			// only logs warnings and drops the connection.
			o.DisableValidateResponseChecksum = true
		}
	}
	client := dynamodb.NewFromConfig(awsCfg, options, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, withCallSlots) })
	// The SDK's path of a direct PutItem is this client's resolved options (its HTTP client and
	// connection pool, retryer, endpoint) without its telemetry and call slots. Resolving them
	// again from the configuration could give it another HTTP client and pool.
	sdkOptions := client.Options()
	sdkOptions.APIOptions = plainAPIOptions
	// After the client has resolved its options, before its first call.
	direct.init(ctx, client, dynamodb.New(sdkOptions))
	return client, nil
}

// tracingOptions make each call a client span and inject nothing into the request: DynamoDB
// reads no W3C trace context, so the headers only cost each call their encoding.
func tracingOptions(tel *telemetry.Telemetry) []otelaws.Option {
	return []otelaws.Option{otelaws.WithTracerProvider(tel.TracerProvider), otelaws.WithTextMapPropagator(propagation.NewCompositeTextMapPropagator())}
}

// WithTelemetry makes every call of a client built with this option a client span and a
// measurement, as NewClient does, for clients it did not build (tests derive theirs from a
// shared one). Not knowing their table prefix, it counts capacity under the full table names.
// The call slots come with the options of a client NewClient built; adding them twice would
// make each call take two.
func WithTelemetry(tel *telemetry.Telemetry) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		m := newCallMetrics(tel, "")
		otelaws.AppendMiddlewares(&o.APIOptions, tracingOptions(tel)...)
		o.APIOptions = append(o.APIOptions, metricsMiddleware(m), capacityMiddleware(m))
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

// credentialsMarker lets Translate tell a failure to obtain credentials (an IRSA token or the
// instance role unreachable) from the SDK's other client-side errors: it is unavailability,
// not a bug in the request.
type credentialsMarker struct{ aws.CredentialsProvider }

func (m credentialsMarker) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &credentialsError{err}
	}
	return c, nil
}

type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return "obtain AWS credentials: " + e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// Translate maps transport failures and throttling to storage.ErrUnavailable and leaves every
// other error as it is. Adapters call it on each error they do not handle themselves.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err // the caller left; nobody waits for a status
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// A budget ran out while DynamoDB was slow: the same answer as any unavailability.
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	var creds *credentialsError
	if errors.As(err, &creds) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
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
