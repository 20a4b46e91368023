package ddb

import (
	"errors"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// attrMap is an item as DynamoDB's JSON protocol writes it; nil when the answer had none.
type attrMap map[string]attrJSON

// attrJSON is one attribute value in DynamoDB's JSON: exactly one member is set. Binary
// values come as base64, which encoding/json decodes into a []byte itself.
type attrJSON struct {
	S    *string
	N    *string
	B    []byte
	BOOL *bool
	NULL *bool
	M    attrMap
	L    []attrJSON
	SS   []string
	NS   []string
	BS   [][]byte
}

var errAttrType = errors.New("an attribute value of no type DynamoDB defines")

// item is m as the SDK's types; nil for nil.
func (m attrMap) item() (map[string]types.AttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		av, err := v.value()
		if err != nil {
			return nil, err
		}
		out[k] = av
	}
	return out, nil
}

func (a attrJSON) value() (types.AttributeValue, error) {
	switch {
	case a.S != nil:
		return &types.AttributeValueMemberS{Value: *a.S}, nil
	case a.N != nil:
		return &types.AttributeValueMemberN{Value: *a.N}, nil
	case a.B != nil:
		return &types.AttributeValueMemberB{Value: a.B}, nil
	case a.BOOL != nil:
		return &types.AttributeValueMemberBOOL{Value: *a.BOOL}, nil
	case a.NULL != nil:
		return &types.AttributeValueMemberNULL{Value: *a.NULL}, nil
	case a.M != nil:
		m, err := a.M.item()
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	case a.L != nil:
		l := make([]types.AttributeValue, len(a.L))
		for i, v := range a.L {
			av, err := v.value()
			if err != nil {
				return nil, err
			}
			l[i] = av
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case a.SS != nil:
		return &types.AttributeValueMemberSS{Value: a.SS}, nil
	case a.NS != nil:
		return &types.AttributeValueMemberNS{Value: a.NS}, nil
	case a.BS != nil:
		return &types.AttributeValueMemberBS{Value: a.BS}, nil
	}
	return nil, errAttrType
}
