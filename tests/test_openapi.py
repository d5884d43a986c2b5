import yaml

from app import openapi


def test_committed_openapi_yaml_matches_the_app() -> None:
    assert openapi.SPEC_PATH.read_text() == openapi.render(), (
        "openapi.yaml is out of date: run `uv run cashback openapi` and commit it"
    )


def test_every_operation_is_named_and_declares_its_problems() -> None:
    spec = yaml.safe_load(openapi.render())
    operation_ids = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            operation_ids.append(operation["operationId"])
            assert operation.get("summary"), (method, path)
            problems = [code for code in operation["responses"] if code[0] in "45"]
            if path not in ("/healthz",):
                assert problems, (method, path)
            for code in problems:
                content = operation["responses"][code]["content"]
                assert set(content) == {"application/problem+json"}, (path, code)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }
    assert len(operation_ids) == len(set(operation_ids))
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert {
        "listOrders",
        "getOrder",
        "getCustomer",
        "listCustomerLedger",
        "createShop",
        "receiveShopifyWebhook",
        "getHealth",
        "getReadiness",
    } <= set(operation_ids)
