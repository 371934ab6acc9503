"""The `Exchange` port on Binance, through python-binance's sync `Client`.

python-binance does no filter checks, never retries, never syncs the clock and sends margin
calls to production even with testnet=True; this adapter covers all four, and turns every
answer into a domain result or a domain error (an unclear answer is never called a failure).

`client` sends (one signed client per key, weight throttle, bans, clock resync, error
mapping), `filters` rounds orders to a symbol's rules, `orders` reads order answers,
`margin` holds the isolated-margin calls, and `exchange` puts them behind the port.
"""
