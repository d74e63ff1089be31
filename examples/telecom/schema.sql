-- Telecom domain: accounts own lines; each line has a plan and a device; accounts get monthly bills.
CREATE TABLE accounts (
    account_id INTEGER PRIMARY KEY,
    holder_name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    balance REAL NOT NULL DEFAULT 0
);
CREATE TABLE plans (
    plan_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    monthly_fee REAL NOT NULL,
    data_gb INTEGER NOT NULL
);
CREATE TABLE lines (
    line_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(account_id),
    phone_number TEXT NOT NULL UNIQUE,
    plan_id TEXT NOT NULL REFERENCES plans(plan_id),
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    roaming TEXT NOT NULL CHECK (roaming IN ('on', 'off'))
);
CREATE TABLE devices (
    device_id INTEGER PRIMARY KEY,
    line_id INTEGER NOT NULL REFERENCES lines(line_id),
    model TEXT NOT NULL,
    insured TEXT NOT NULL CHECK (insured IN ('yes', 'no'))
);
CREATE TABLE bills (
    bill_id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(account_id),
    period TEXT NOT NULL,
    amount REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('due', 'paid'))
);
-- Paying a bill lowers the account balance, so a later balance check sees the payment.
CREATE TRIGGER bill_paid AFTER UPDATE OF status ON bills WHEN NEW.status = 'paid' AND OLD.status = 'due' BEGIN
    UPDATE accounts SET balance = round(balance - NEW.amount, 2) WHERE account_id = NEW.account_id;
END;
