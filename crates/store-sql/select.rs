//! `SELECT <every column of a table> FROM <table> <rest>`, checked against each dialect's schema at
//! compile time. SQLite stores ids as blobs and times as text, PostgreSQL as `uuid` and `timestamptz`:
//! the `AS "col!: Type"` overrides say what both decode to, and `!` / `?` say whether a column may be
//! NULL, so the two dialects' inference cannot disagree about the row types.

macro_rules! select_customers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            CustomerRow,
            "SELECT id AS \"id!: Uuid\", name AS \"name!\", contract_ref AS \"contract_ref!\", contract_state AS \"contract_state!\", \
             created_at AS \"created_at!: OffsetDateTime\", zoom_trunk AS \"zoom_trunk?\", number_limit AS \"number_limit?: i64\", billing_ref AS \"billing_ref?\" FROM customers " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_users {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            UserRow,
            "SELECT id AS \"id!: Uuid\", email AS \"email!\", password_hash AS \"password_hash!\", role AS \"role!\", customer_id AS \"customer_id?: Uuid\", \
             failed_logins AS \"failed_logins!: i64\", locked_until AS \"locked_until?: OffsetDateTime\", created_at AS \"created_at!: OffsetDateTime\" FROM users " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_tokens {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            TokenRow,
            "SELECT id AS \"id!: Uuid\", name AS \"name!\", token_hash AS \"token_hash!\", scope AS \"scope!\", created_by AS \"created_by!\", \
             created_at AS \"created_at!: OffsetDateTime\", revoked_at AS \"revoked_at?: OffsetDateTime\" FROM api_tokens " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_orders {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            OrderRow,
            "SELECT id AS \"id!: Uuid\", customer_id AS \"customer_id!: Uuid\", state AS \"state!\", number_count AS \"number_count!: i64\", \
             created_by AS \"created_by!\", created_at AS \"created_at!: OffsetDateTime\" FROM orders " + $rest $(, $arg)*
        )
    };
}

macro_rules! select_numbers {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            NumberRow,
            "SELECT id AS \"id!: Uuid\", e164 AS \"e164!\", state AS \"state!\", customer_id AS \"customer_id?: Uuid\", order_id AS \"order_id?: Uuid\", \
             tags AS \"tags!\", billing_ref AS \"billing_ref?\", region AS \"region?\", note AS \"note?\", reason AS \"reason?\", \
             aging_until AS \"aging_until?: OffsetDateTime\", updated_at AS \"updated_at!: OffsetDateTime\", version AS \"version!: i64\" FROM numbers " + $rest $(, $arg)*
        )
    };
}
