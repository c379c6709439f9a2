from fabric.analysis.tcp import delta, parse, total

SNMP = """Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 5 5 0 0 0 100 1000 10 0 0 0
TcpExt: SyncookiesSent TCPSACKReorder TCPOFOQueue TCPDSACKRecv
TcpExt: 0 3 7 2
"""


def test_parse_picks_known_counters():
    c = parse(SNMP)
    assert c["Tcp.OutSegs"] == 1000 and c["Tcp.RetransSegs"] == 10
    assert c["TcpExt.TCPSACKReorder"] == 3 and c["TcpExt.TCPOFOQueue"] == 7
    assert "Tcp.RtoMin" not in c


def test_delta_and_total():
    a = parse(SNMP)
    b = dict(a, **{"Tcp.OutSegs": 3000, "Tcp.RetransSegs": 13, "TcpExt.TCPSACKReorder": 5})
    d = delta(a, b)
    assert d["Tcp.OutSegs"] == 2000 and d["Tcp.RetransSegs"] == 3
    t = total([d, d])
    assert t["Tcp.OutSegs"] == 4000 and t["retransmit_ppm"] == 1500 and t["reorder_events"] == 4
