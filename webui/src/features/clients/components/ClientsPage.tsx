export default function ClientsPage() { return <h1>ClientsPage</h1> }
