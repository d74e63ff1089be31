-- Retail domain: customers, products, orders and their items, returns.
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    phone TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('standard', 'gold'))
);
CREATE TABLE products (
    product_id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    price REAL NOT NULL,
    stock INTEGER NOT NULL CHECK (stock >= 0)
);
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(customer_id),
    status TEXT NOT NULL CHECK (status IN ('pending', 'shipped', 'delivered', 'cancelled')),
    shipping_address TEXT NOT NULL,
    total REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders(order_id),
    product_id INTEGER NOT NULL REFERENCES products(product_id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    unit_price REAL NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE TABLE returns (
    return_id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders(order_id),
    reason TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'requested'
);
-- Order totals follow their items, so a change in one turn shows up in a later lookup.
CREATE TRIGGER items_total_insert AFTER INSERT ON order_items BEGIN
    UPDATE orders SET total = round((SELECT sum(quantity * unit_price) FROM order_items WHERE order_id = NEW.order_id), 2)
    WHERE order_id = NEW.order_id;
END;
CREATE TRIGGER items_total_update AFTER UPDATE ON order_items BEGIN
    UPDATE orders SET total = round((SELECT sum(quantity * unit_price) FROM order_items WHERE order_id = NEW.order_id), 2)
    WHERE order_id = NEW.order_id;
END;
