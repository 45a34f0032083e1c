from oncely.observe.redact import masked_url


def test_masked_url_hides_only_the_password() -> None:
    assert masked_url("postgresql://app:s3cret@db:5432/x?schema=y") == (
        "postgresql://app:***@db:5432/x?schema=y"
    )
    assert masked_url("postgresql://app@db/x") == "postgresql://app@db/x"
    assert masked_url("sqlite:///oncely.db") == "sqlite:///oncely.db"
